"""Which payload files a download pattern means, and where each one lands.

Payload names are rooted (`/input/a.dcm`, `/operators/seg/mask.nii`). A pattern is matched a
path segment at a time: `*`, `?` and `[...]` stay inside one segment, `**` spans any number of
segments, and a pattern that matches a folder selects everything below it. Matching is
case-sensitive.

Files keep their folder structure below the pattern's *base*, the folder before the first
segment with a wildcard, or, for a plain path, the folder holding the named file or folder,
as `cp -r`/`scp` would: `/operators/seg/*` puts `/operators/seg/sub/x` at `DEST/sub/x`,
`/operators/seg` puts it at `DEST/seg/sub/x`, no pattern at all at `DEST/operators/seg/sub/x`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

from aorta import ids
from aorta.cli.failures import UsageFailure
from aorta.errors import Invalid

EVERYTHING = "/**"
_WILDCARD = re.compile(r"[*?\[]")


def normalize(name: str) -> str:
    """A payload name in its rooted form: `./operators/x` and `operators/x` -> `/operators/x`."""
    parts = [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]
    return "/" + "/".join(parts)


def _segments(path: str) -> list[str]:
    return [part for part in normalize(path).split("/") if part]


def _match(pattern: list[str], name: list[str]) -> bool:
    if not pattern:
        return not name
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match(rest, name[skip:]) for skip in range(len(name) + 1))
    return bool(name) and fnmatchcase(name[0], head) and _match(rest, name[1:])


def matches(pattern: str, name: str) -> bool:
    """Whether `name` is selected by `pattern`: the pattern matches it or a folder above it."""
    wanted = _segments(pattern)
    if not wanted:
        return True
    parts = _segments(name)
    return any(_match(wanted, parts[:depth]) for depth in range(len(parts), 0, -1))


def base_of(pattern: str) -> PurePosixPath:
    """The folder that selected files are placed relative to (see the module docstring)."""
    parts = _segments(pattern)
    for index, part in enumerate(parts):
        if _WILDCARD.search(part):
            return PurePosixPath("/", *parts[:index])
    return PurePosixPath("/", *parts[:-1])


@dataclass(frozen=True)
class Selected:
    """A payload file chosen for download and the local path it is written to."""

    name: str
    size: int
    target: Path


def select(files: Iterable[tuple[str, int]], pattern: str, dest: Path) -> list[Selected]:
    """The `(name, size)` files `pattern` selects, with their targets under `dest`.

    A name that would land outside `dest` (a `..` segment) is refused rather than written.
    """
    base = base_of(pattern)
    chosen = []
    for name, size in files:
        rooted = normalize(name)
        if not matches(pattern, rooted):
            continue
        relative = PurePosixPath(rooted).relative_to(base)
        if ".." in relative.parts:
            raise UsageFailure(f"the payload file name {name!r} leaves the destination folder")
        chosen.append(Selected(rooted, size, dest.joinpath(*relative.parts)))
    return sorted(chosen, key=lambda s: s.name)


def split_clara_source(text: str) -> tuple[str, str] | None:
    """`JOBID:/operators/op/*` (Clara's download form) -> (id, pattern); None if not that form."""
    head, colon, rest = text.partition(":")
    if not colon:
        return None
    try:
        return ids.canonical_id(head, what="job"), rest or EVERYTHING
    except Invalid:
        return None
