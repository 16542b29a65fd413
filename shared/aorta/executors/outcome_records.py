"""The outcomes of ended runs, kept for a day, so a crash never runs a finished operator
again.

An executor clears a run away (removes its container, its pod or its workspace) once its
outcome and outputs are stored; the scheduler records the outcome a moment later. A platform
killed in between would find neither the run nor the record and run the operator a second time.
So the outcome is written here first, one small JSON record per run, and an executor started
after a crash answers `running` and `wait` from it. Records older than `keep_for` are swept
when runs are listed.

- `OutcomeRecords`: on disk (`<folder>/<run id>.json`, 0600, replaced atomically), for the
  executors whose runs live on this host: the container executor (`aorta.executors.container`)
  and the local one (`aorta.executors.local`);
- `BlobOutcomeRecords`: in the blob store (`<prefix><run id>.json`), for the Kubernetes
  executor, whose scheduler may restart in another pod on another node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aorta.blobs import BlobStore
from aorta.errors import NotFound
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

    def read_blocking(self, run_id: str) -> RunOutcome | None:
        """`read` in the calling thread, for a caller with more file work to do in the same
        worker thread. Blocks."""
        if not _RUN_ID.match(run_id):
            return None
        return self._read(run_id)

    async def run_ids(self) -> list[str]:
        """The run ids recorded, after sweeping records older than `keep_for`."""
        return await asyncio.to_thread(self._sweep)

    def _write(self, outcome: RunOutcome) -> None:
        record = memoryview(_encoded(outcome).encode("utf-8"))
        staged = self.folder / f".{outcome.run_id}{_SUFFIX}.part"
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            descriptor = os.open(staged, flags, FILE_MODE)
        except FileNotFoundError:  # no folder yet: made now, rather than asked for every run
            self.folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
            descriptor = os.open(staged, flags, FILE_MODE)
        try:
            while record:
                record = record[os.write(descriptor, record) :]
        finally:
            os.close(descriptor)
        os.replace(staged, self.folder / f"{outcome.run_id}{_SUFFIX}")

    def _read(self, run_id: str) -> RunOutcome | None:
        try:
            return _decoded((self.folder / f"{run_id}{_SUFFIX}").read_text(encoding="utf-8"))
        except OSError:
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


class BlobOutcomeRecords:
    """The records under `prefix` (ends with `/`) in `blobs`; the same calls as
    `OutcomeRecords`. Every call may raise what the store raises (`Unavailable` when it cannot
    be reached): a record that could not be read must not pass for a missing one."""

    def __init__(
        self, blobs: BlobStore, prefix: str, *, keep_for: float = DEFAULT_KEEP_FOR
    ) -> None:
        self.prefix = prefix
        self._blobs = blobs
        self._keep_for = keep_for

    async def write(self, outcome: RunOutcome) -> None:
        """Records `outcome`, atomically (a run id that cannot be a key is not recorded)."""
        if not _RUN_ID.match(outcome.run_id):
            return

        async def chunks() -> AsyncIterator[bytes]:
            yield _encoded(outcome).encode()

        await self._blobs.put(self._key(outcome.run_id), chunks())

    async def read(self, run_id: str) -> RunOutcome | None:
        """The recorded outcome of `run_id`, None when there is none (or it is unreadable)."""
        if not _RUN_ID.match(run_id):
            return None
        try:
            raw = b"".join([chunk async for chunk in self._blobs.get(self._key(run_id))])
        except NotFound:
            return None
        try:
            return _decoded(raw.decode())
        except UnicodeDecodeError:
            return None

    async def run_ids(self) -> list[str]:
        """The run ids recorded, after deleting records older than `keep_for`."""
        oldest = time.time() - self._keep_for
        kept, expired = [], []
        async for info in self._blobs.list(self.prefix):
            name = info.key[len(self.prefix) :]
            if "/" in name or not name.endswith(_SUFFIX):
                continue
            if info.modified.timestamp() < oldest:
                expired.append(info.key)
            else:
                kept.append(name.removesuffix(_SUFFIX))
        for key in expired:
            with contextlib.suppress(NotFound):  # another executor swept it first
                await self._blobs.delete(key)
        return kept

    def _key(self, run_id: str) -> str:
        return f"{self.prefix}{run_id}{_SUFFIX}"


def _encoded(outcome: RunOutcome) -> str:
    record = {
        "run_id": outcome.run_id,
        "reason": outcome.reason.value,
        "exit_code": outcome.exit_code,
        "message": outcome.message,
        "times": asdict(outcome.times),
    }
    return json.dumps(record)


def _decoded(text: str) -> RunOutcome | None:
    """The outcome a record holds; None when it is not one."""
    try:
        raw: dict[str, Any] = json.loads(text)
        code = raw["exit_code"]
        # Records written before run times were kept have none.
        times = {stage: float(at) for stage, at in raw.get("times", {}).items() if at is not None}
        return RunOutcome(
            str(raw["run_id"]),
            RunReason(raw["reason"]),
            None if code is None else int(code),
            str(raw["message"]),
            RunTimes(**times),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
