"""The definition corpus under tests/pipelines and how a test reads one of its cases."""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2] / "pipelines"
INVALID = CORPUS / "invalid"
WARNED = CORPUS / "warned"


def read_case(folder: Path, name: str, root: str | None) -> tuple[dict[str, str], str]:
    """The files of one case as Pipelines.Create would send them, and its root file."""
    path = folder / name
    if path.is_file():
        return {path.name: path.read_text()}, path.name
    files = {p.relative_to(path).as_posix(): p.read_text() for p in sorted(path.rglob("*.yml"))}
    return files, root or "pipeline.yml"
