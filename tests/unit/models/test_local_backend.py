"""The local backend's model repository: archives expanded once per revision, swapped whole."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from aorta.errors import Invalid
from aorta.triton.local.backend import LocalTritonBackend
from aorta.triton.local.install import STUB, TritonInstall
from tests.unit.models.model_fakes import model_zip, zip_bytes


@pytest.fixture
async def backend(tmp_path: Path) -> LocalTritonBackend:
    tree = tmp_path / "tree"
    (tree / "backends" / "python").mkdir(parents=True)
    (tree / "backends" / "python" / "libtriton_python.so").write_bytes(b"\x7fELF")
    (tree / "stub").write_bytes(b"stub")
    install = TritonInstall(
        binary=tree / "tritonserver",
        backends=tree / "backends",
        stub=tree / "stub",
        libraries=(),
        interpreter_bin=Path(sys.executable).parent,
    )
    return await LocalTritonBackend.open(tmp_path / "pools", install, environ={})


def writer(data: bytes, calls: list[str]) -> Callable[[Path], Awaitable[None]]:
    async def write(path: Path) -> None:
        calls.append(path.name)
        await asyncio.to_thread(path.write_bytes, data)

    return write


async def test_the_working_folder_holds_a_private_copy_of_the_backends(
    backend: LocalTritonBackend,
) -> None:
    python = backend.folder / "backends" / "python"
    assert (python / STUB).read_bytes() == b"stub"
    assert (python / "libtriton_python.so").exists()
    await backend.close()
    assert not backend.folder.exists()


async def test_a_revision_is_expanded_once_and_replaced_whole(backend: LocalTritonBackend) -> None:
    calls: list[str] = []
    await backend.install_model("seg", "r1", writer(model_zip("seg"), calls))
    await backend.install_model("seg", "r1", writer(model_zip("seg"), calls))
    assert len(calls) == 1
    folder = backend.repository / "seg"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == [
        "1",
        "1/model.py",
        "config.pbtxt",
    ]
    newer = zip_bytes({"config.pbtxt": 'name: "seg"', "2/model.py": b"# two\n"})
    await backend.install_model("seg", "r2", writer(newer, calls))
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == [
        "2",
        "2/model.py",
        "config.pbtxt",
    ]
    assert list((backend.folder / "incoming").iterdir()) == []
    await backend.remove_model("seg")
    assert not folder.exists()
    await backend.close()


async def test_a_tampered_archive_is_not_expanded(backend: LocalTritonBackend) -> None:
    evil = zip_bytes({"config.pbtxt": 'name: "seg"', "1/../../x.py": b"x"})
    with pytest.raises(Invalid):
        await backend.install_model("seg", "r1", writer(evil, []))
    assert not (backend.repository / "seg").exists()
    assert list((backend.folder / "incoming").iterdir()) == []
    await backend.close()
