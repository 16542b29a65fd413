"""Progress of uploads and downloads: a bar with the current file, percentage, bytes, rate and
time left, on stderr, for people at a terminal; nothing at all for pipes, JSON and quiet mode.

Either way a `Transfer` counts the bytes, so commands can report a summary afterwards.
"""

from __future__ import annotations

import time
from types import TracebackType

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from aorta.cli.humanize import duration, size
from aorta.cli.output import Output

_NAME_WIDTH = 40


class Transfer:
    """Counts the bytes of one transfer and draws them when `output` is a terminal.

    Use as a context manager; `advance` is safe to call from gRPC's request-iterator thread.
    """

    def __init__(self, output: Output, verb: str, total: int | None) -> None:
        self.verb = verb
        self.total = total
        self.done = 0
        self.files: set[str] = set()
        self.sha256: dict[str, str] = {}
        """The checksum of each file moved, by payload name (`/input/scan.dcm`), where known."""
        self.direct: set[str] = set()
        """The files moved straight to or from the blob store (docs/payloads.md)."""
        self._started = time.monotonic()
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if output.show_progress:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=output.err,
            )

    def __enter__(self) -> Transfer:
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task(self.verb, total=self.total)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self, name: str, count: int) -> None:
        """`count` more bytes of the file `name` went through."""
        self.done += count
        self.files.add(name)
        if self._progress is not None and self._task is not None:
            shown = name if len(name) <= _NAME_WIDTH else "…" + name[-(_NAME_WIDTH - 1) :]
            self._progress.update(self._task, advance=count, description=f"{self.verb} {shown}")

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def summary(self) -> str:
        """`3 files, 4.2 MB in 1.3s`, and `, 2 straight to the blob store` when some were."""
        count = len(self.files)
        noun = "file" if count == 1 else "files"
        direct = f", {len(self.direct)} straight to the blob store" if self.direct else ""
        return (
            f"{count} {noun}, {size(self.done)} in {duration(self.elapsed, precise=True)}{direct}"
        )
