"""Every document the repository cites is in the repository.

What the code takes from Clara's documentation is summarised in docs/clara-compatibility.md, and
the facts about the test servers in docs/test-infrastructure.md; nothing may point at notes kept
elsewhere. The checks read every file of the working tree that git tracks or would track
(binary files skipped):

- no file names a document outside the repository, nor cites a numbered section (a section
  mark and a number) of one;
- every relative path to a markdown file (`docs/jobs.md`, `ARCHITECTURE.md`,
  `../../docs/models.md`) exists, relative to the citing file's folder or to the repository root;
- every markdown link to a heading (`models.md#the-triton-pool`, `#states`) finds that heading;
- every citation of the form `docs/clara-compatibility.md, "Heading"` names a heading of that
  document (the headings of docs/clara-compatibility.md are the stable names the code cites).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[2]
THIS_FILE = Path(__file__).resolve().relative_to(ROOT).as_posix()

# Spelled in pieces so that this file does not match itself.
FORBIDDEN = (
    "clara" + "-reference",
    "clara" + "-api.md",
    "infra" + " notes",
    "infrastructure" + " notes",
    "infra" + ".md",
    "../" + "shared/",
)
SECTION_NUMBER = re.compile("\u00a7" + r"\s*\d")

# The documents the code cites most, by heading.
CITED_BY_HEADING = ("docs/clara-compatibility.md", "docs/test-infrastructure.md")

# A relative path ending in .md, not part of a longer path, URL or word.
MARKDOWN_PATH = re.compile(r"(?<![\w./~:-])((?:\.{1,2}/)*(?:[\w.-]+/)*[\w-][\w.-]*\.md)(?![\w/-])")
MARKDOWN_LINK = re.compile(r"\]\(((?:\.{1,2}/)*(?:[\w.-]+/)*[\w.-]+\.md)?#([^)\s]+)\)")
HEADING_CITATION = re.compile(r'`?((?:\.\./)*(?:[\w.-]+/)*[\w.-]+\.md)`?,\s*"([^"]+)"')
# A line break inside a comment or docstring, with the next line's indentation and comment mark.
LINE_BREAK = re.compile(r"[ \t]*\n[ \t]*(?:(?:#|//|\*|>)(?![#\w])[ \t]*)?")


def _repository_files() -> list[str]:
    assert shutil.which("git") and (ROOT / ".git").exists(), "it reads the files git tracks"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode("utf-8", "surrogateescape")
    return sorted({name for name in listed.split("\0") if name and (ROOT / name).is_file()})


def _text_files() -> dict[str, str]:
    texts = {}
    for name in _repository_files():
        if name == THIS_FILE:
            continue
        data = (ROOT / name).read_bytes()
        if b"\0" in data:
            continue
        try:
            texts[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return texts


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    return _text_files()


def _joined(text: str) -> str:
    """`text` with line breaks (and the comment marks that continue a comment) made spaces."""
    return LINE_BREAK.sub(" ", text)


def _line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle.lower() in line.lower():
            return number
    return 0


def _resolve(citing: str, path: str) -> Path | None:
    """The file `path` names, read relative to `citing`'s folder, else to the root."""
    for base in (ROOT / citing).parent, ROOT:
        candidate = (base / path).resolve()
        if candidate.is_file() and candidate.is_relative_to(ROOT):
            return candidate
    return None


def _slug(heading: str) -> str:
    """The anchor a markdown renderer gives `heading` (GitHub's rules)."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def _headings(path: Path) -> tuple[str, ...]:
    headings = []
    in_fence = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and (match := re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)):
            headings.append(match.group(1))
    return tuple(headings)


def test_no_file_names_a_document_outside_the_repository(texts: dict[str, str]) -> None:
    found = []
    for name, text in texts.items():
        joined = _joined(text).lower()
        for forbidden in FORBIDDEN:
            if forbidden in joined:
                found.append(f"{name}:{_line_of(text, forbidden.split()[0])}: {forbidden!r}")
        for match in SECTION_NUMBER.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(f"{name}:{line}: a numbered section of a document outside the repository")
    assert not found, (
        "cite the repository's own docs (docs/clara-compatibility.md, docs/test-infrastructure.md)"
        " instead:\n" + "\n".join(found)
    )


def test_every_markdown_path_exists(texts: dict[str, str]) -> None:
    missing = []
    for name, text in texts.items():
        for match in MARKDOWN_PATH.finditer(text):
            if _resolve(name, match.group(1)) is None:
                line = text.count("\n", 0, match.start()) + 1
                missing.append(f"{name}:{line}: {match.group(1)}")
    assert not missing, "these markdown files are not in the repository:\n" + "\n".join(missing)


def test_every_markdown_link_to_a_heading_finds_it(texts: dict[str, str]) -> None:
    broken = []
    for name, text in texts.items():
        if not name.endswith(".md"):
            continue
        for match in MARKDOWN_LINK.finditer(text):
            path = match.group(1) or PurePosixPath(name).name
            target = _resolve(name, path)
            anchors = {_slug(heading) for heading in _headings(target)} if target else set()
            if match.group(2) not in anchors:
                line = text.count("\n", 0, match.start()) + 1
                broken.append(f"{name}:{line}: {path}#{match.group(2)}")
    assert not broken, "these links name no heading of their document:\n" + "\n".join(broken)


def test_every_cited_heading_exists(texts: dict[str, str]) -> None:
    broken = []
    for name, text in texts.items():
        for match in HEADING_CITATION.finditer(_joined(text)):
            target = _resolve(name, match.group(1))
            if target is not None and match.group(2) not in _headings(target):
                broken.append(f'{name}: {match.group(1)}, "{match.group(2)}"')
    assert not broken, "these citations name no heading of their document:\n" + "\n".join(broken)


def test_the_cited_documents_exist() -> None:
    for path in CITED_BY_HEADING:
        assert (ROOT / path).is_file(), path
        assert _headings(ROOT / path), path
