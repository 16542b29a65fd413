"""How an exited container becomes a `RunOutcome`: pure, from the engine's inspect document.

A container stopped by the executor ended for that reason (TIMEOUT, CANCELLED; an adopted one
that exited non-zero after running its whole timeout was stopped for it). Otherwise the
kernel's OOM killer (`State.OOMKilled`, or a SIGKILL nobody sent under a memory limit) makes a
FAILED run that says "out of memory (limit X)", any other non-zero exit a FAILED run with its
code; exit 0 has no outcome here: its outputs must be stored first.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aorta.executors.port import RunOutcome, RunReason

Json = dict[str, Any]

SIGKILL_EXIT = 137
_MIB = 1 << 20


def exit_code(container: Json) -> int:
    """The exit status of the container's main process (-1 when the engine has none)."""
    return int((container.get("State") or {}).get("ExitCode", -1))


def has_exited(container: Json) -> bool:
    """Whether the container ran and ended (`exited`, or `dead` after a failed removal)."""
    return str((container.get("State") or {}).get("Status", "")) in {"exited", "dead"}


def has_started(container: Json) -> bool:
    """Whether the container was started at least once (not merely created)."""
    state = container.get("State") or {}
    started = str(state.get("StartedAt") or "")
    return bool(state.get("Running")) or (bool(started) and not started.startswith("0001-"))


def memory_limit(container: Json) -> str:
    """The container's memory limit for people (`512 MiB`), `none` when it has none."""
    limit = int((container.get("HostConfig") or {}).get("Memory") or 0)
    if limit <= 0:
        return "none"
    return f"{limit // _MIB} MiB" if limit % _MIB == 0 else f"{limit} bytes"


def failure(
    container: Json,
    run_id: str,
    operator: str,
    *,
    stopped: RunReason | None,
    timeout: float,
    tail: str = "",
) -> RunOutcome | None:
    """The outcome of an exited container, or None when it exited 0 unstopped (its outputs
    decide). `stopped` is why the executor stopped it, if it did; `tail` the last lines of its
    log, quoted in the message of a failure."""
    code = exit_code(container)
    if stopped is RunReason.TIMEOUT:
        message = f"operator {operator} ran past its timeout of {timeout:g} s and was stopped"
        return RunOutcome(run_id, RunReason.TIMEOUT, code, message)
    if stopped is not None:
        return RunOutcome(run_id, stopped, code, f"operator {operator} was cancelled")
    state = container.get("State") or {}
    limit = memory_limit(container)
    if state.get("OOMKilled"):
        message = f"operator {operator} ran out of memory (limit {limit}) and was killed"
        return RunOutcome(run_id, RunReason.FAILED, code, _with_tail(message, tail))
    if code == SIGKILL_EXIT and limit != "none":
        message = (
            f"operator {operator} was killed (exit {code}, SIGKILL) and nobody stopped it: "
            f"out of memory (limit {limit})"
        )
        return RunOutcome(run_id, RunReason.FAILED, code, _with_tail(message, tail))
    if code != 0:
        error = str(state.get("Error") or "")
        message = f"operator {operator} failed: exit code {code}" + (f" ({error})" if error else "")
        return RunOutcome(run_id, RunReason.FAILED, code, _with_tail(message, tail))
    return None


def _with_tail(message: str, tail: str) -> str:
    return f"{message}\nlast lines of its log:\n{tail}" if tail else message


def started_at(container: Json) -> datetime | None:
    """When the container's main process started (the engine's `State.StartedAt`), None when
    it never started."""
    return _instant(container, "StartedAt")


def finished_at(container: Json) -> datetime | None:
    """When the container's main process exited (the engine's `State.FinishedAt`), None while
    it has not."""
    return _instant(container, "FinishedAt") if has_exited(container) else None


def ran_past(container: Json, timeout: float) -> bool:
    """Whether an exited container ran at least `timeout` seconds and did not exit 0: what an
    executor that stopped it for its timeout, then crashed, leaves behind."""
    started, finished = started_at(container), _instant(container, "FinishedAt")
    if started is None or finished is None or exit_code(container) == 0:
        return False
    return (finished - started).total_seconds() >= timeout


def _instant(container: Json, field: str) -> datetime | None:
    """A time of the engine's `State` (nanoseconds cut to microseconds); None when unset."""
    text = str((container.get("State") or {}).get(field) or "")
    if not text or text.startswith("0001-"):
        return None
    head, dot, rest = text.partition(".")
    if dot:
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
