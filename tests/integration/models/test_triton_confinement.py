"""A local tritonserver of a root platform, confined: the real CPU server of the nvidia-pytriton
wheel, started through the local backend, runs as the Triton user, and a model it runs sees
neither the platform's variables nor a file inside a 0700 data dir.

The probe model answers with what its own process can do, so the checks hold for code loaded
through Triton's API, not only for the server's first process. Without the Triton user, the models
service still starts and every acquire says how to make it.
"""

from __future__ import annotations

import asyncio
import io
import os
import pwd
import shutil
import tempfile
import zipfile
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc.aio as triton_grpc

from aorta.errors import Unavailable
from aorta.testing.nats import async_nats_server
from aorta.triton.local.backend import LocalTritonBackend, LocalTritonServer
from aorta.triton.local.confinement import DEFAULT_RUN_AS, resolve_triton_user, working_root
from aorta.triton.local.install import TritonInstall
from aorta_services.models.app import MissingTriton
from tests.integration.models.models_platform import start_platform

PROBE_CONFIG = """name: "probe"
backend: "python"
max_batch_size: 0
input [{ name: "IN", data_type: TYPE_INT32, dims: [1] }]
output [
  { name: "UID", data_type: TYPE_INT64, dims: [1] },
  { name: "READ", data_type: TYPE_INT32, dims: [1] },
  { name: "AORTA", data_type: TYPE_INT32, dims: [1] }
]
"""

PROBE_MODEL = """import os

import numpy as np
import triton_python_backend_utils as pb_utils

SECRET = {secret!r}


class TritonPythonModel:
    def execute(self, requests):
        try:
            with open(SECRET) as file:
                file.read()
            read = 1
        except OSError:
            read = 0
        platform = sum(name.startswith("AORTA_") for name in os.environ)
        tensors = [
            pb_utils.Tensor("UID", np.array([os.getuid()], dtype=np.int64)),
            pb_utils.Tensor("READ", np.array([read], dtype=np.int32)),
            pb_utils.Tensor("AORTA", np.array([platform], dtype=np.int32)),
        ]
        return [pb_utils.InferenceResponse(tensors) for _ in requests]
"""


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A 0700 data dir holding a readable file, in a folder every user may pass through, so
    only the data dir's mode keeps the file from the server."""
    parent = Path(tempfile.mkdtemp(prefix="aorta-confinement-", dir="/var/tmp"))
    try:
        parent.chmod(0o755)
        data = parent / "data"
        data.mkdir(mode=0o700)
        (data / "secret").write_text("platform secret")
        (data / "secret").chmod(0o644)
        yield data
    finally:
        shutil.rmtree(parent)


@pytest.fixture
async def server(data_dir: Path) -> AsyncIterator[LocalTritonServer]:
    install = await asyncio.to_thread(TritonInstall.locate)
    user = resolve_triton_user("", euid=os.geteuid(), egid=os.getegid())
    environ = dict(os.environ) | {"AORTA_S3_SECRET_KEY": "not for Triton", "LANG": "C.UTF-8"}
    backend = await LocalTritonBackend.open(
        await asyncio.to_thread(working_root, os.geteuid()), install, environ=environ, user=user
    )
    try:
        probe = _probe_zip(data_dir / "secret")

        async def write_archive(path: Path) -> None:
            await asyncio.to_thread(path.write_bytes, probe)

        await backend.install_model("probe", "1", write_archive)
        started = await backend.start_server("confined")
        try:
            yield started
        finally:
            await started.stop()
    finally:
        await backend.close()


def _probe_zip(secret: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("config.pbtxt", PROBE_CONFIG)
        archive.writestr("1/model.py", PROBE_MODEL.format(secret=str(secret)))
    return buffer.getvalue()


def _ids(pid: int) -> tuple[list[int], list[int], str]:
    """The real/effective/saved/fs uids, gids and supplementary groups of a process."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    uids = [int(value) for value in fields["Uid"].split()]
    gids = [int(value) for value in fields["Gid"].split()]
    return uids, gids, fields["Groups"].strip()


async def test_a_root_platform_runs_its_server_as_the_triton_user_with_no_platform_variable(
    server: LocalTritonServer,
) -> None:
    account = pwd.getpwnam(DEFAULT_RUN_AS)
    pid = server.process.pid
    assert pid is not None
    uids, gids, groups = await asyncio.to_thread(_ids, pid)
    assert uids == [account.pw_uid] * 4
    assert gids == [account.pw_gid] * 4
    assert groups == ""
    variables = (await asyncio.to_thread(Path(f"/proc/{pid}/environ").read_bytes)).split(b"\0")
    names = {entry.split(b"=", 1)[0].decode() for entry in variables if entry}
    assert not {name for name in names if name.startswith("AORTA_")}
    assert {"PATH", "LD_LIBRARY_PATH", "HOME", "TMPDIR", "LANG"} <= names


async def test_a_model_loaded_through_the_api_runs_as_that_user_and_cannot_read_the_data_dir(
    server: LocalTritonServer, data_dir: Path
) -> None:
    await server.load("probe")
    request = triton_grpc.InferInput("IN", [1], "INT32")
    request.set_data_from_numpy(np.array([1], dtype=np.int32))
    async with triton_grpc.InferenceServerClient(server.grpc_uri) as client:
        result = await client.infer("probe", [request])
    assert result.as_numpy("UID").tolist() == [pwd.getpwnam(DEFAULT_RUN_AS).pw_uid]
    assert result.as_numpy("READ").tolist() == [0]
    assert result.as_numpy("AORTA").tolist() == [0]
    assert await asyncio.to_thread((data_dir / "secret").read_text) == "platform secret"


async def test_without_the_triton_user_every_acquire_says_how_to_make_it(tmp_path: Path) -> None:
    environ = {"AORTA_TRITON_RUN_AS": "no-such-aorta-user"}
    async with async_nats_server(tmp_path / "nats") as nats, AsyncExitStack() as stack:
        platform = await start_platform(stack, nats.url, tmp_path / "data", environ)
        assert isinstance(platform.models.backend, MissingTriton)
        with pytest.raises(Unavailable) as missing:
            await platform.models.backend.start_server("none")
    text = "\n".join(missing.value.messages)
    assert "'no-such-aorta-user' that AORTA_TRITON_RUN_AS names does not exist" in text
    assert "make setup" in text
