"""The set of files one `Pipelines.Create` sent, looked up the way Clara did.

Paths are compared case-insensitively, after turning `\\` into `/` and removing `.` and `..`
steps, so `Ops\\Reader.yml` and `./ops/reader.yml` are one file; files sent under two spellings
of one path are joined in the order they came, as chunks of one file would be. Each file is
composed at most once, however often it is imported.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass

from aorta.pipeline_spec.diagnostics import Mark, Report
from aorta.pipeline_spec.yaml_nodes import Node, compose

MAX_DEFINITION_BYTES = 1024 * 1024
"""Most bytes (UTF-8) all files of one definition may hold together."""

NO_FILE = "<definition>"
"""The file name of diagnostics about the request as a whole (no files, an unknown root)."""


def normalize(path: str) -> str:
    """The identity of `path` among the files: forward slashes, no `.`/`..` steps, lower case."""
    cleaned = path.replace("\\", "/")
    return posixpath.normpath(cleaned).lower() if cleaned else ""


@dataclass(frozen=True)
class SourceFile:
    """One file as sent: `path` keeps the spelling of its first appearance."""

    path: str
    text: str


class FileSet:
    """The definition's files, checked against the size limit once."""

    def __init__(self, files: Mapping[str, str], report: Report) -> None:
        joined: dict[str, SourceFile] = {}
        for path, text in files.items():
            key = normalize(path)
            earlier = joined.get(key)
            joined[key] = SourceFile(path, text if earlier is None else earlier.text + text)
        self._files = joined
        self._documents: dict[str, Node | None] = {}
        self._report = report
        self.within_limits = self._check_size()

    @property
    def order(self) -> dict[str, int]:
        """File display paths in the order they were sent (to sort diagnostics)."""
        return {source.path: index for index, source in enumerate(self._files.values())}

    def root(self, requested: str | None) -> SourceFile | None:
        """The root document: `requested` when given, else the first file; reports if absent."""
        if requested is None:
            first = next(iter(self._files.values()), None)
            if first is None:
                self._report.error(Mark(NO_FILE, 1, 1), "no definition files were sent")
            return first
        found = self._files.get(normalize(requested))
        if found is None:
            sent = ", ".join(repr(source.path) for source in self._files.values()) or "none"
            self._report.error(
                Mark(NO_FILE, 1, 1),
                f"the root file {requested!r} was not sent (files sent: {sent})",
            )
        return found

    def find(self, path: str) -> SourceFile | None:
        """The file at `path` (already joined to its importer's folder), or None."""
        return self._files.get(normalize(path))

    def paths(self) -> list[str]:
        """Display paths of every file sent."""
        return [source.path for source in self._files.values()]

    def document(self, source: SourceFile) -> Node | None:
        """The composed YAML of `source`; errors reported once, None when unreadable."""
        key = normalize(source.path)
        if key not in self._documents:
            self._documents[key] = compose(source.text, source.path, self._report)
        return self._documents[key]

    def report_unused(self) -> None:
        """Warns about files sent that no document imports."""
        for key, source in self._files.items():
            if key not in self._documents:
                self._report.warning(
                    Mark(source.path, 1, 1), f"{source.path!r} was sent but nothing imports it"
                )

    def _check_size(self) -> bool:
        total = 0
        for source in self._files.values():
            # len() first: a huge text need not be encoded to know it is too big.
            size = len(source.text)
            if size <= MAX_DEFINITION_BYTES:
                size = len(source.text.encode("utf-8", "surrogatepass"))
            total += size
            if total > MAX_DEFINITION_BYTES:
                self._report.error(
                    Mark(source.path, 1, 1),
                    f"the definition is larger than {MAX_DEFINITION_BYTES} bytes (1 MiB), "
                    "the most one pipeline may send",
                )
                return False
        return True
