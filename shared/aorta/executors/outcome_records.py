"""The outcomes of ended runs, kept on disk for a day, so a crash never runs a finished
operator again.

An executor clears a run away (removes its container, or its workspace) once its outcome and
outputs are stored; the scheduler records the outcome a moment later. A platform killed in
between would find neither the run nor the record and run the operator a second time. So the
outcome is written here first, one small file per run (`<folder>/<run id>.json`, 0600, replaced
atomically), and an executor started after a crash answers `running` and `wait` from it. The
container executor (`aorta.executors.container`) and the local one (`aorta.executors.local`)
both keep them. Records older than `keep_for` are swept when runs are listed.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from dataclasses import asdict
from pathlib import Path

from aorta.executors.port import RunOutcome, RunReason, RunTimes

DEFAULT_KEEP_FOR = 24 * 3600.0
FILE_MODE = 0o600
FOLDER_MODE = 0o700
_RUN_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,400}$")
_SUFFIX = ".json"


class OutcomeRecords:
    """The records in `folder` (created 0700 on first write)."""

    def __init__(self, folder: Path, *, keep_for: float = DEFAULT_KEEP_FOR) -> None:
        self.folder = folder
        self._keep_for = keep_for

    async def write(self, outcome: RunOutcome) -> None:
        """Records `outcome` (a run id that cannot be a file name is not recorded). Raises
        `OSError`."""
        if _RUN_ID.match(outcome.run_id):
            await asyncio.to_thread(self._write, outcome)

    async def read(self, run_id: str) -> RunOutcome | None:
        """The recorded outcome of `run_id`, None when there is none (or it is unreadable)."""
        if not _RUN_ID.match(run_id):
            return None
        return await asyncio.to_thread(self._read, run_id)

    async def run_ids(self) -> list[str]:
        """The run ids recorded, after sweeping records older than `keep_for`."""
        return await asyncio.to_thread(self._sweep)

    def _write(self, outcome: RunOutcome) -> None:
        self.folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        record = {
            "run_id": outcome.run_id,
            "reason": outcome.reason.value,
            "exit_code": outcome.exit_code,
            "message": outcome.message,
            "times": asdict(outcome.times),
        }
        staged = self.folder / f".{outcome.run_id}{_SUFFIX}.part"
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        descriptor = os.open(staged, flags, FILE_MODE)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(record, file)
        os.replace(staged, self.folder / f"{outcome.run_id}{_SUFFIX}")

    def _read(self, run_id: str) -> RunOutcome | None:
        try:
            raw = json.loads((self.folder / f"{run_id}{_SUFFIX}").read_text(encoding="utf-8"))
            code = raw["exit_code"]
            # Records written before run times were kept have none.
            times = {
                stage: float(at) for stage, at in raw.get("times", {}).items() if at is not None
            }
            return RunOutcome(
                str(raw["run_id"]),
                RunReason(raw["reason"]),
                None if code is None else int(code),
                str(raw["message"]),
                RunTimes(**times),
            )
        except (OSError, KeyError, TypeError, ValueError):
            return None

    def _sweep(self) -> list[str]:
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return []
        oldest = time.time() - self._keep_for
        kept = []
        for entry in entries:
            if not entry.name.endswith(_SUFFIX) or entry.name.startswith("."):
                continue
            if entry.stat(follow_symlinks=False).st_mtime < oldest:
                os.unlink(entry.path)
            else:
                kept.append(entry.name.removesuffix(_SUFFIX))
        return kept
