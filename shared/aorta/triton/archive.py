"""A Triton model folder uploaded as a ZIP archive: checked whole, then expanded safely.

What an archive must be (docs/models.md says the same for users):

- a ZIP file of a Triton model folder: `config.pbtxt` and at least one numbered version folder
  holding files (`1/model.py`, `1/model.onnx`, ...), either at the top of the archive or inside
  one top folder named after the model (`segmentation/config.pbtxt`, as `zip -r` makes it).
  macOS's `__MACOSX/` side folder is ignored;
- every member a plain file or folder with a relative path: no absolute path, drive letter,
  backslash, `.`/`..` or empty segment, control character, duplicate, symbolic link, device,
  FIFO or socket; no encrypted member; a compression method Python's `zipfile` reads;
- at most `ArchiveLimits.max_members` members and `max_uncompressed_bytes` once expanded (the
  sizes the archive declares; the reader never produces more than declared, so a zip bomb is
  refused before any byte is inflated), every member's CRC intact;
- `config.pbtxt` valid text for Triton's `ModelConfig` protobuf; its `name`, when set, equal to
  the model's name, and so is the top folder's. The model's name is the one the upload gives,
  else the config's, else the top folder's.

`inspect_archive` raises `Invalid` (MODEL_ARCHIVE_INVALID) listing what is wrong, so a bad archive
is refused whole; `extract_archive` repeats the member checks while it writes, never writing
outside its target. Both block: call them in a worker thread.
"""

from __future__ import annotations

import lzma
import re
import stat
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2  # type: ignore[import-untyped]

from aorta.errors import ErrorCode, Invalid

CONFIG = "config.pbtxt"
IGNORED_TOP_FOLDER = "__MACOSX"
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
"""Model names: they become folder names and URL segments of Triton's API."""

_READABLE_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_UNIX = 3
_ENCRYPTED = 0x1
_DRIVE = re.compile(r"^[A-Za-z]:")
_MAX_MESSAGES = 20
# What reading a corrupt member can raise besides BadZipFile (which `testzip` reports itself).
_CORRUPT = (zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError)
_DAMAGED = (*_CORRUPT, OSError, ValueError, NotImplementedError)
_COPY_BLOCK = 1 << 20


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on what one archive may hold (settings `AORTA_MODELS_MAX_*`)."""

    max_members: int = 10_000
    max_uncompressed_bytes: int = 16 * 1024**3
    max_config_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class ModelArchive:
    """An archive that passed every check: the model it holds and where its files are.

    `root` is the prefix stripped on expansion (`""` or `"<top folder>/"`); `files` are the
    members' paths below it; `versions` the numbered version folders holding files.
    """

    name: str
    root: str
    backend: str
    platform: str
    versions: tuple[int, ...]
    files: tuple[str, ...]
    uncompressed_bytes: int


DEFAULT_LIMITS = ArchiveLimits()


def invalid(*problems: str) -> Invalid:
    """The error for a refused archive (at most 20 problems shown)."""
    shown = list(problems[:_MAX_MESSAGES])
    if len(problems) > _MAX_MESSAGES:
        shown.append(f"... and {len(problems) - _MAX_MESSAGES} more problems")
    return Invalid(*shown, code=ErrorCode.MODEL_ARCHIVE_INVALID)


def check_model_name(name: str) -> str:
    """`name` when it can name a model; `Invalid` (MODEL_REQUEST_INVALID) saying why not."""
    if not MODEL_NAME.match(name):
        raise Invalid(
            f"model name {name[:80]!r} is not valid: use 1 to 128 letters, digits, '_', '.' or "
            "'-', starting with a letter or digit",
            code=ErrorCode.MODEL_REQUEST_INVALID,
        )
    return name


def inspect_archive(
    path: Path, *, name: str = "", limits: ArchiveLimits = DEFAULT_LIMITS, verify: bool = True
) -> ModelArchive:
    """Checks the archive at `path` (see the module docstring) and describes the model in it.

    `name` is the name the upload gives ("" when none). With `verify`, every member is read
    once to check its CRC. Raises `Invalid` listing the problems; reads nothing else.
    """
    if path.stat().st_size == 0:
        raise invalid("the upload holds no bytes: send the model folder as a ZIP archive")
    try:
        with zipfile.ZipFile(path) as archive:
            return _inspect(archive, name, limits, verify)
    except zipfile.BadZipFile as exc:
        raise invalid(f"the upload is not a readable ZIP archive: {exc}") from None
    except _DAMAGED as exc:
        raise invalid(f"the ZIP archive is damaged: {exc}") from None


def _inspect(
    archive: zipfile.ZipFile, name: str, limits: ArchiveLimits, verify: bool
) -> ModelArchive:
    members = archive.infolist()
    if len(members) > limits.max_members:
        raise invalid(
            f"the archive holds {len(members)} members, more than the {limits.max_members} allowed"
        )
    problems = [problem for info in members if (problem := member_problem(info))]
    names = [info.filename for info in members]
    duplicates = sorted(n for n, count in Counter(names).items() if count > 1)
    problems += [f"{shown(n)} appears more than once in the archive" for n in duplicates]
    if problems:
        raise invalid(*problems)
    total = sum(info.file_size for info in members)
    if total > limits.max_uncompressed_bytes:
        raise invalid(
            f"the archive expands to {total} bytes, more than the "
            f"{limits.max_uncompressed_bytes} bytes allowed"
        )
    files = [n for n in names if not n.endswith("/") and _top(n) != IGNORED_TOP_FOLDER]
    root = _root(files)
    config = _config(archive, root + CONFIG, limits)
    folder = root.rstrip("/")
    chosen = name or config.name or folder
    if not chosen:
        raise invalid(
            "the model has no name: give one with the upload, in config.pbtxt (name: ...) or as "
            "the archive's top folder"
        )
    check_model_name(chosen)
    if config.name and config.name != chosen:
        raise invalid(
            f"config.pbtxt names the model {config.name!r}, not {chosen!r}: Triton needs the "
            "names equal"
        )
    if folder and folder != chosen:
        raise invalid(
            f"the archive's top folder {folder!r} is not named after the model {chosen!r}: "
            f"rename the folder to {chosen}, or zip the folder's contents without it"
        )
    inside = tuple(n[len(root) :] for n in files if n.startswith(root))
    versions = sorted({int(p.split("/", 1)[0]) for p in inside if re.match(r"^[0-9]+/.", p)})
    if not versions:
        raise invalid(
            "the archive has no numbered version folder holding the model's files "
            f"(such as {root}1/model.py next to {root}{CONFIG})"
        )
    if verify:
        damaged = archive.testzip()
        if damaged is not None:
            raise invalid(f"member {shown(damaged)} is damaged (its CRC does not match)")
    return ModelArchive(
        name=chosen,
        root=root,
        backend=str(config.backend),
        platform=str(config.platform),
        versions=tuple(versions),
        files=inside,
        uncompressed_bytes=total,
    )


def member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why one member may not be expanded, or None when it may."""
    name = info.filename
    if info.flag_bits & _ENCRYPTED:
        return f"{shown(name)} is encrypted"
    if info.compress_type not in _READABLE_METHODS:
        return f"{shown(name)} uses an unsupported compression method ({info.compress_type})"
    problem = _path_problem(name)
    if problem:
        return f"{shown(name)} {problem}"
    mode = info.external_attr >> 16
    # Many writers (Python's own `writestr`) leave the file type bits at 0: a plain file.
    if info.create_system == _UNIX and stat.S_IFMT(mode):
        if stat.S_ISLNK(mode):
            return f"{shown(name)} is a symbolic link (only files and folders are allowed)"
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            return f"{shown(name)} is a device, FIFO or socket (only files and folders are allowed)"
    return None


def _path_problem(name: str) -> str | None:
    if not name:
        return "has an empty name"
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        return "has a control character in its name"
    if "\\" in name:
        return "uses '\\' in its path (ZIP paths use '/')"
    if name.startswith("/") or _DRIVE.match(name):
        return "has an absolute path"
    segments = name.removesuffix("/").split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        return "has an empty, '.' or '..' segment in its path"
    return None


def _top(name: str) -> str:
    return name.split("/", 1)[0]


def _root(files: list[str]) -> str:
    if CONFIG in files:
        return ""
    tops = {_top(n) for n in files if "/" in n}
    loose = [n for n in files if "/" not in n]
    if len(tops) == 1 and not loose:
        top = tops.pop()
        if f"{top}/{CONFIG}" in files:
            return f"{top}/"
    raise invalid(
        f"the archive has no {CONFIG} at its top or inside one top folder named after the "
        "model: zip a Triton model folder (config.pbtxt and version folders such as 1/)"
    )


def _config(archive: zipfile.ZipFile, member: str, limits: ArchiveLimits) -> Any:
    info = archive.getinfo(member)
    if info.file_size > limits.max_config_bytes:
        raise invalid(
            f"{CONFIG} is {info.file_size} bytes, more than the {limits.max_config_bytes} allowed"
        )
    try:
        text = archive.read(info).decode("utf-8")
    except UnicodeDecodeError:
        raise invalid(f"{CONFIG} is not UTF-8 text") from None
    config = model_config_pb2.ModelConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        where = f"line {exc.GetLine()}, column {exc.GetColumn()}: " if exc.GetLine() else ""
        detail = str(exc).split(" : ", 1)[-1]
        raise invalid(
            f"{CONFIG} is not a valid Triton model configuration: {where}{detail}"
        ) from None
    return config


def extract_archive(path: Path, model: ModelArchive, target: Path, limits: ArchiveLimits) -> None:
    """Writes the model folder of the archive at `path` into `target` (created; must not exist).

    Only the members below `model.root` are written, as plain files (mode 0644) and folders;
    each member is checked again, and the bytes written are counted against the limit, so a
    store holding a tampered archive still cannot write outside `target` or fill the disk.
    `Invalid` (MODEL_ARCHIVE_INVALID) when a check fails; `target` may then hold a part.
    """
    target.mkdir(parents=True)
    try:
        _extract(path, model, target.resolve(), limits)
    except _CORRUPT as exc:
        raise invalid(f"the stored archive of model {model.name!r} is damaged: {exc}") from None


def _extract(path: Path, model: ModelArchive, base: Path, limits: ArchiveLimits) -> None:
    written = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            problem = member_problem(info)
            if problem:
                raise invalid(problem)
            if _top(info.filename) == IGNORED_TOP_FOLDER or not info.filename.startswith(
                model.root
            ):
                continue
            relative = info.filename[len(model.root) :]
            if not relative:
                continue
            destination = base.joinpath(*PurePosixPath(relative).parts)
            if not destination.resolve().is_relative_to(base):
                raise invalid(f"{shown(info.filename)} would be written outside the model folder")
            if info.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, destination.open("xb") as sink:
                while block := source.read(_COPY_BLOCK):
                    written += len(block)
                    if written > limits.max_uncompressed_bytes:
                        raise invalid(
                            f"the archive expands to more than {limits.max_uncompressed_bytes} "
                            "bytes"
                        )
                    sink.write(block)
            destination.chmod(0o644)


def shown(name: str) -> str:
    """A member name as error messages quote it (shortened past 80 characters)."""
    return repr(name if len(name) <= 80 else name[:77] + "...")
