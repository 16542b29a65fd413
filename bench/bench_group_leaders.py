"""What starting an operator under each group leader costs the local executor, on this machine.

`OperatorProcess.spawn` of the command `true` until its exit status is read, as the executor
does for every run, `ROUNDS` times under the native leader, the Python one and a native leader
started ahead of the run (`standby`: the run handed to it, `StandbyLeaders.hand`; its start,
made while the previous command runs, is not counted) in turn (the medians; a shared machine's
load weighs on each alike), as the operators' user when this process is root (as a root
platform runs them). Twice: from this process as it is, and after
it grew by `GROWN_MIB` of touched memory, as a platform does, since a start that copies the
parent's address space grows with it. `spawn_ms` is the time the event loop is held by the
start; `run_ms` the whole run of `true`. Needs the native leader built (`make setup`).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from aorta.executors.local import process_group
from aorta.executors.local.operator_user import resolve_operator_user
from aorta.executors.local.process_group import OperatorProcess
from aorta.executors.local.standby_leader import StandbyLeaders
from aorta.logger import configure_logging

ROUNDS = 30
GROWN_MIB = 1024
COMMAND = ("true",)


async def one_run(
    folder: Path, native: Path | None, standby: StandbyLeaders | None = None
) -> tuple[float, float]:
    """Milliseconds until `spawn` (or the hand-over to `standby`'s leader) returned and until
    the exit status was read."""
    process_group.NATIVE_LEADER = native or folder / "no-native-leader"
    user = resolve_operator_user("", euid=os.geteuid(), egid=os.getegid())
    status = folder / "status"
    status.unlink(missing_ok=True)
    env = {"PATH": os.defpath}
    if standby is not None:
        standby.refill(user)
        if not await standby.settled():
            raise RuntimeError("no standby group leader started")
    started = time.perf_counter()
    process = None
    if standby is not None:
        process = standby.hand(COMMAND, cwd=folder, env=env, status_file=status, user=user)
    if process is None:
        process = await OperatorProcess.spawn(
            COMMAND, cwd=folder, env=env, status_file=status, user=user
        )
    spawned = time.perf_counter()
    await process.wait()
    while await process.output.read(1 << 16):
        pass
    ended = await process.exit_status()
    finished = time.perf_counter()
    process.close()
    if ended.code != 0:
        raise RuntimeError(f"{COMMAND} under the group leader: {ended.describe()}")
    return (spawned - started) * 1000, (finished - started) * 1000


async def compare(folder: Path, native: Path) -> dict[str, float]:
    runs: dict[str, list[tuple[float, float]]] = {"native": [], "python": [], "standby": []}
    standby = StandbyLeaders()
    try:
        for _ in range(ROUNDS):
            runs["native"].append(await one_run(folder, native))
            runs["python"].append(await one_run(folder, None))
            runs["standby"].append(await one_run(folder, native, standby))
    finally:
        await standby.close()
    figures = {}
    for leader, times in runs.items():
        figures[f"{leader}_spawn_ms"] = round(statistics.median(t[0] for t in times), 2)
        figures[f"{leader}_run_ms"] = round(statistics.median(t[1] for t in times), 2)
    return figures


async def measure(folder: Path, native: Path) -> dict[str, Any]:
    report: dict[str, Any] = {"operators_switch_user": os.geteuid() == 0}
    report |= {f"small_{key}": value for key, value in (await compare(folder, native)).items()}
    grown = bytearray(GROWN_MIB << 20)
    for offset in range(0, len(grown), 4096):
        grown[offset] = 1
    report["grown_mib"] = GROWN_MIB
    report |= {f"grown_{key}": value for key, value in (await compare(folder, native)).items()}
    del grown
    return report


def run() -> dict[str, Any]:
    configure_logging("json", "error")
    native = process_group.native_leader()
    if native is None:
        return {"native_leader": "missing or untrusted: run `make setup`"}
    saved = process_group.NATIVE_LEADER
    with tempfile.TemporaryDirectory(prefix="aorta-bench-leaders-") as name:
        folder = Path(name)
        folder.chmod(0o777)  # the operators' user writes the status file here
        try:
            return asyncio.run(measure(folder, native))
        finally:
            process_group.NATIVE_LEADER = saved


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
