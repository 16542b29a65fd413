"""Large objects streamed through the local store do not stay in the page cache (drop-behind).

A buffered write copies every byte into a page-cache page, and a file read fills as many. A
2 GiB upload needs 2 GiB of free pages and leaves them all cached. On a virtual machine whose
free memory goes back to the host (free page reporting, ballooning), each of those pages is
faulted in anew: on the development VM the kernel's copy then cost about 2 CPU s per GiB
written, against 0.2-0.5 s when a transfer keeps reusing a few recently freed pages. So once a
transfer has moved `KEEP_BELOW` bytes, the ranges behind it are handed back with
`POSIX_FADV_DONTNEED`: a write's newest range is queued for write-back (dirty pages are never
dropped) and dropped a few ranges later, once clean; a read's pages go as soon as they are
read, since `pread` returned copies. Smaller objects keep their pages, so a small file read
again and again is served from memory; a large one read again comes from the disk, which the
store reads one chunk ahead of its consumer.

Advice only: where `posix_fadvise` is missing (macOS) or refused, nothing changes but memory.
Every call here blocks (briefly); the store makes them from its threads.
"""

from __future__ import annotations

import contextlib
import os

STEP = 8 << 20
"""Bytes moved between two pieces of advice."""
KEEP_BELOW = 16 << 20
"""Transfers shorter than this leave the page cache alone."""
WRITE_BACK_LAG = 4 * STEP
"""How far behind a write its ranges are dropped: by then their write-back has ended."""

_advise = getattr(os, "posix_fadvise", None)


def drop(fd: int, start: int, end: int) -> None:
    """Advises the kernel to drop the clean cached pages of `fd` in `[start, end)`, and to start
    writing back its dirty ones there."""
    if _advise is None or end <= start:
        return
    with contextlib.suppress(OSError):
        _advise(fd, start, end - start, os.POSIX_FADV_DONTNEED)


class DropBehind:
    """The advice for one sequential transfer (a write or a read) of a file from `origin` on."""

    def __init__(self, fd: int, origin: int = 0) -> None:
        self._fd = fd
        self._origin = origin
        self._advised = origin
        self._dropped = origin

    def moved(self, position: int) -> None:
        """The transfer has written or read every byte before `position` (an absolute offset)."""
        if position - self._origin < KEEP_BELOW or position - self._advised < STEP:
            return
        drop(self._fd, self._advised, position)
        self._advised = position
        behind = position - WRITE_BACK_LAG
        if behind > self._dropped:
            drop(self._fd, self._dropped, behind)
            self._dropped = behind

    def finished(self, position: int) -> None:
        """The transfer ended at `position` (for a write, after its fsync: every page is clean):
        a large one leaves none of its pages cached."""
        if position - self._origin >= KEEP_BELOW:
            drop(self._fd, self._origin, position)
