"""Server-side paging of a job list the platform streams whole (pure, no I/O).

Clara's `Jobs.List` has no paging, so the console reads the stream and keeps only one page:
the `limit` newest jobs older than the cursor, in a heap of `limit + 1` entries, so memory
stays bounded by the page, not by the number of jobs. Jobs are ordered newest first by
(created time, job id); the cursor is the key of the last job of the previous page, so pages
stay stable while new jobs arrive.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
from dataclasses import dataclass, field
from typing import Any

Key = tuple[int, str]
"""(created time in Clara seconds, job id): larger is newer."""

MAX_LIMIT = 500


class BadCursor(ValueError):
    """The cursor was not made by `encode_cursor`."""


def encode_cursor(key: Key) -> str:
    raw = json.dumps([key[0], key[1]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> Key:
    """The key a cursor names; `BadCursor` for any other text."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        created, job_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as error:
        raise BadCursor(f"cursor {text!r} is not one this API gave") from error
    if not isinstance(created, int) or not isinstance(job_id, str):
        raise BadCursor(f"cursor {text!r} is not one this API gave")
    return created, job_id


@dataclass
class Page:
    """Gathers one page of a stream of jobs offered in any order."""

    limit: int
    after: Key | None = None
    total: int = 0
    _heap: list[tuple[Key, int, Any]] = field(default_factory=list)
    _seen: int = 0

    def offer(self, key: Key, item: Any) -> None:
        """Counts a job that matches the filters and keeps it if it may be on the page."""
        self.total += 1
        if self.after is not None and key >= self.after:
            return
        self._seen += 1
        entry = (key, self._seen, item)
        if len(self._heap) <= self.limit:
            heapq.heappush(self._heap, entry)
        elif entry[0] > self._heap[0][0]:
            heapq.heapreplace(self._heap, entry)

    def result(self) -> tuple[list[Any], str | None]:
        """The page's items, newest first, and the cursor of the next page (None: last)."""
        ordered = sorted(self._heap, key=lambda entry: entry[0], reverse=True)
        items = [item for _, _, item in ordered[: self.limit]]
        if len(ordered) <= self.limit:
            return items, None
        return items, encode_cursor(ordered[self.limit - 1][0])
