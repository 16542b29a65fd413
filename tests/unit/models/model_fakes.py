"""Test helpers for the models service: archives built in memory, and an in-memory Triton
backend that records what the pool asked of it."""

from __future__ import annotations

import asyncio
import io
import stat
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aorta.errors import ErrorCode, Invalid, Unavailable
from aorta.triton import ArchiveWriter

CONFIG = 'name: "{name}"\nbackend: "python"\nmax_batch_size: 0\n'
MODEL_PY = b"class TritonPythonModel:\n    pass\n"


def zip_bytes(
    files: Mapping[str, bytes | str],
    *,
    modes: Mapping[str, int] | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    """A ZIP archive of `files` (name -> content); `modes` sets a member's Unix mode bits."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            mode = (modes or {}).get(name)
            if mode is not None:
                info.create_system = 3
                info.external_attr = mode << 16
            elif name.endswith("/"):
                info.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10
            archive.writestr(info, content)
    return buffer.getvalue()


def model_zip(name: str = "seg", *, top: bool = True, config: str | None = None) -> bytes:
    """A valid model archive: `config.pbtxt` and `1/model.py`, under `<name>/` when `top`."""
    prefix = f"{name}/" if top else ""
    text = CONFIG.format(name=name) if config is None else config
    return zip_bytes({f"{prefix}config.pbtxt": text, f"{prefix}1/model.py": MODEL_PY})


@dataclass
class FakeServer:
    """A `TritonServer` in memory. `fail` maps model names to the error text of their load."""

    id: str
    backend: FakeBackend
    grpc_uri: str
    http_uri: str
    running: bool = True
    loaded: set[str] = field(default_factory=set)
    load_calls: list[str] = field(default_factory=list)
    unload_calls: list[str] = field(default_factory=list)

    def alive(self) -> bool:
        return self.running

    async def load(self, model: str) -> None:
        self.load_calls.append(model)
        await asyncio.sleep(self.backend.load_delay)
        if not self.running:
            raise Unavailable(f"server {self.id} stopped")
        if model in self.backend.fail:
            raise Invalid(
                f"model {model!r} failed to load on Triton: {self.backend.fail[model]}",
                code=ErrorCode.MODEL_ARCHIVE_INVALID,
            )
        self.loaded.add(model)

    async def unload(self, model: str) -> None:
        self.unload_calls.append(model)
        self.loaded.discard(model)

    async def ready_models(self) -> set[str]:
        return set(self.loaded)

    async def stop(self) -> None:
        self.running = False
        self.backend.stopped.append(self.id)


@dataclass
class FakeBackend:
    """A `TritonBackend` in memory: servers on made-up ports, installs and devices recorded."""

    load_delay: float = 0.0
    start_delay: float = 0.0
    fail: dict[str, str] = field(default_factory=dict)
    fail_start: bool = False
    servers: list[FakeServer] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    installs: list[tuple[str, str]] = field(default_factory=list)
    installed: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    devices: dict[str, tuple[int, ...]] = field(default_factory=dict)
    closed: bool = False
    # Set once a server start begins; a start waits for `start_gate` when there is one, so a
    # test can act while a start is under way without guessing how long it takes.
    start_begun: asyncio.Event = field(default_factory=asyncio.Event)
    start_gate: asyncio.Event | None = None

    async def start_server(self, server_id: str, gpus: Sequence[int] = ()) -> FakeServer:
        self.start_begun.set()
        if self.start_gate is not None:
            await self.start_gate.wait()
        await asyncio.sleep(self.start_delay)
        if self.fail_start:
            raise Unavailable("tritonserver did not start")
        self.devices[server_id] = tuple(gpus)
        port = 9000 + 2 * len(self.servers)
        server = FakeServer(server_id, self, f"127.0.0.1:{port + 1}", f"127.0.0.1:{port}")
        self.servers.append(server)
        return server

    async def install_model(self, name: str, revision: str, write_archive: ArchiveWriter) -> None:
        if self.installed.get(name) == revision:
            return
        self.installs.append((name, revision))
        await write_archive(Path(f"{name}.zip"))
        self.installed[name] = revision

    async def remove_model(self, name: str) -> None:
        self.installed.pop(name, None)
        self.removed.append(name)

    async def close(self) -> None:
        self.closed = True


@dataclass
class FakeSource:
    """A `ModelSource` that remembers what was asked and writes nothing."""

    written: list[tuple[str, str]] = field(default_factory=list)

    async def write_archive(self, name: str, revision: str, into: Path) -> None:
        self.written.append((name, revision))
