"""A Triton model folder as a zip archive, built while it streams.

A model folder is Triton's layout: `config.pbtxt` and numbered version folders
(`1/model.pt`, ...). The archive holds it under one top folder named after the model
(`covid/config.pbtxt`, `covid/1/model.pt`), as `zip -r covid.zip covid/` would, and is written
to a non-seekable sink chunk by chunk, so a model of any size is sent without a temporary file
and without holding it in memory.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from aorta.cli.failures import UsageFailure
from aorta.cli.files import CHUNK_SIZE

CONFIG = "config.pbtxt"
MODEL_TYPES = ("tensorflow", "tensorrt", "pytorch", "unknown")

_CONFIG_NAME = re.compile(r'^\s*name\s*:\s*"([^"]*)"', re.MULTILINE)
_CONFIG_PLATFORM = re.compile(r'^\s*(?:platform|backend)\s*:\s*"([^"]*)"', re.MULTILINE)
# Triton platform/backend names -> Clara's model types.
_TYPE_BY_PLATFORM = (
    ("tensorrt", "tensorrt"),
    ("tensorflow", "tensorflow"),
    ("pytorch", "pytorch"),
    ("onnx", "unknown"),
)


@dataclass(frozen=True)
class ModelFolder:
    """A model folder checked for upload: its name, guessed type and files."""

    folder: Path
    name: str
    model_type: str
    files: tuple[Path, ...]

    @property
    def size(self) -> int:
        return sum(path.stat().st_size for path in self.files)


def guess_type(config_text: str) -> str:
    """Clara's model type for a `config.pbtxt`'s `platform:`/`backend:`; `unknown` if none."""
    match = _CONFIG_PLATFORM.search(config_text)
    if match:
        for marker, model_type in _TYPE_BY_PLATFORM:
            if marker in match.group(1).lower():
                return model_type
    return "unknown"


def inspect_folder(folder: Path, name: str | None = None, *, raw: bool = False) -> ModelFolder:
    """Checks `folder` is a Triton model folder and returns what will be uploaded.

    The name is `name`, else the one in `config.pbtxt`, else the folder's. Unless `raw`, the
    folder must hold `config.pbtxt` and a numbered version folder, and a name in the config
    must equal the model name (Triton refuses a mismatch); failures are `UsageFailure`s.
    """
    config = folder / CONFIG
    text = config.read_text(errors="replace") if config.is_file() else ""
    declared = _CONFIG_NAME.search(text)
    chosen = name or (declared.group(1) if declared else folder.resolve().name)
    if not raw:
        if not config.is_file():
            raise UsageFailure(f"{folder} has no {CONFIG}: is it a Triton model folder?")
        if not any(p.is_dir() and p.name.isdigit() for p in folder.iterdir()):
            raise UsageFailure(f"{folder} has no version folder (such as {folder}/1/)")
        if declared and declared.group(1) != chosen:
            raise UsageFailure(
                f"{config} names the model {declared.group(1)!r}, not {chosen!r}; "
                "Triton needs them equal"
            )
    files = tuple(
        sorted(
            Path(root) / file
            for root, _, names in os.walk(folder)
            for file in names
            if (Path(root) / file).is_file() and "__pycache__" not in Path(root).parts
        )
    )
    if not files:
        raise UsageFailure(f"{folder} holds no files")
    return ModelFolder(folder, chosen, guess_type(text), files)


class _Sink(io.RawIOBase):
    """A write-only, non-seekable stream that keeps what was written until drained."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._parts.append(bytes(data))
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def drain(self) -> bytes:
        joined = b"".join(self._parts)
        self._parts.clear()
        return joined


def _pieces(data: bytes, chunk_size: int) -> Iterator[bytes]:
    for start in range(0, len(data), chunk_size):
        yield data[start : start + chunk_size]


def zip_chunks(
    model: ModelFolder,
    advance: Callable[[str, int], None] = lambda _name, _count: None,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[bytes]:
    """The zip archive of `model` in chunks of at most `chunk_size` bytes.

    `advance(name, bytes)` is told as each block of a source file has been compressed.
    """
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in model.files:
            arcname = f"{model.name}/{path.relative_to(model.folder).as_posix()}"
            info = zipfile.ZipInfo.from_file(path, arcname)
            info.compress_type = zipfile.ZIP_DEFLATED
            with path.open("rb") as source, archive.open(info, "w") as target:
                while block := source.read(chunk_size):
                    target.write(block)
                    advance(arcname, len(block))
                    yield from _pieces(sink.drain(), chunk_size)
            yield from _pieces(sink.drain(), chunk_size)
    yield from _pieces(sink.drain(), chunk_size)


def zip_folder(folder: Path, name: str | None = None) -> bytes:
    """The whole zip archive of model folder `folder` in memory, checked as `inspect_folder`
    checks it: for small models, scripts and tests."""
    return b"".join(zip_chunks(inspect_folder(folder, name)))
