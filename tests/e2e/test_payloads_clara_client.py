"""NVIDIA's own Python client (`nvidia-clara-client` 0.8.1.7), unchanged, against the gateway
with the pipelines and payloads services on a real nats-server: every PayloadsClient method, a
1 GiB file up and down, and the names the platform refuses.

The client runs in its own virtualenv and process (`run_clara_python`); the snippet prints one
JSON document of what it saw, which the test asserts on. The big file goes through streams on
both sides (the client reads and hashes 64 KiB at a time), never whole in memory; while it
moves, this process (which runs the gateway) is sampled to show its memory stays bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from aorta.bus.nats import NatsBus
from aorta.runtime.service import service_context
from aorta.settings import Settings
from aorta.testing.clara_client import run_clara_python
from aorta.testing.nats import async_nats_server
from aorta_services.gateway import app as gateway_app
from aorta_services.payloads import app as payloads_app
from aorta_services.pipelines import app as pipelines_app

BIG_BYTES = 1 << 30
BLOCK = 1 << 20
MAX_RSS_GROWTH = 128 << 20
"""Far below the file's size: the gateway streams, it never holds a file."""

SNIPPET = """
import hashlib, io, json, sys, time
from nvidia_clara.payloads_client import PayloadsClient

target, big_path = sys.argv[1], sys.argv[2]
client = PayloadsClient(target)
seen = {}

def failure(call):
    try:
        call()
    except Exception as error:
        return str(error)
    return None

def files(details):
    return sorted([f.name, f.size, f.mode] for f in details.file_details)

class HashingSink:
    def __init__(self):
        self.digest, self.size = hashlib.sha256(), 0
    def write(self, data):
        self.digest.update(data)
        self.size += len(data)

created = client.create_payload(metadata={"study": "ct-1"})
payload_id = created.payload_id
seen["id"], seen["type"] = payload_id.value, created.payload_type
uploaded = [client.upload(payload_id, "a.txt", io.BytesIO(b"alpha"))]
uploaded.append(client.upload(payload_id, "series/0001.dcm", io.BytesIO(b"d" * 200000)))
started = time.perf_counter()
with open(big_path, "rb") as source:
    uploaded.append(client.upload(payload_id, "volumes/big.raw", file_object=source))
seen["upload_s"] = time.perf_counter() - started
seen["uploaded"] = [[u.name, u.size, u.mode] for u in uploaded]

details = client.get_details(payload_id)
seen["details"] = {
    "id": details.payload_id.value,
    "type": details.payload_type,
    "metadata": dict(details.metadata),
    "files": files(details),
}

sink = HashingSink()
started = time.perf_counter()
got = client.download_from(payload_id, "/input/volumes/big.raw", sink)
seen["download_s"] = time.perf_counter() - started
seen["big"] = [got.name, got.size, sink.size, sink.digest.hexdigest()]
small = io.BytesIO()
got = client.download_from(payload_id, "./input/series/0001.dcm", small)
seen["small"] = [got.name, got.size, hashlib.sha256(small.getvalue()).hexdigest()]

client.remove_from(payload_id, "/input/a.txt")
seen["after_remove"] = files(client.get_details(payload_id))
seen["remove_again"] = failure(lambda: client.remove_from(payload_id, "/input/a.txt"))
seen["download_missing"] = failure(
    lambda: client.download_from(payload_id, "/input/a.txt", io.BytesIO())
)

seen["added"] = dict(client.add_metadata(payload_id, {"Site": "north"}))
seen["duplicate"] = failure(lambda: client.add_metadata(payload_id, {"SITE": "south"}))
seen["after_remove_metadata"] = dict(client.remove_metadata(payload_id, ["STUDY"]))

for name in ("../escape.txt", "/etc/passwd", "series/../../escape.txt"):
    seen.setdefault("refused", []).append(
        failure(lambda: client.upload(payload_id, name, io.BytesIO(b"evil")))
    )
seen["empty_file"] = failure(lambda: client.upload(payload_id, "empty.txt", io.BytesIO(b"")))

empty = client.create_payload()
empty_details = client.get_details(empty.payload_id)
seen["empty_payload"] = [empty_details.payload_id.value, files(empty_details)]

client.delete_payload(payload_id)
seen["after_delete"] = failure(lambda: client.get_details(payload_id))
seen["unknown"] = failure(
    lambda: client.get_details(type(payload_id)("0123456789abcdef0123456789abcdef"))
)
client.close()
print(json.dumps(seen))
"""


def write_big_file(path: Path) -> str:
    """Writes `BIG_BYTES` of data in which every 1 MiB block differs (a window sliding over a
    random buffer), fast; returns its sha256, computed block by block."""
    base = os.urandom(BLOCK + 4096)
    digest = hashlib.sha256()
    with path.open("wb") as target:
        for index in range(BIG_BYTES // BLOCK):
            start = (index * 4099) % 4096
            block = base[start : start + BLOCK]
            digest.update(block)
            target.write(block)
    return digest.hexdigest()


@pytest.fixture
async def target(tmp_path: Path) -> AsyncIterator[str]:
    """`host:port` of a gateway before the pipelines and payloads services, on a real
    nats-server, with the embedded adapters (SQLite, a local blob folder)."""
    async with async_nats_server(tmp_path / "nats") as server:
        settings = Settings.from_env(
            {
                "AORTA_DATA_DIR": str(tmp_path / "data"),
                "AORTA_NATS_URL": server.url,
                "AORTA_RPC_TIMEOUT": "10",
            }
        )
        bus = await NatsBus.connect(server.url, name="aorta-e2e", default_timeout=10.0)
        async with service_context(settings, bus) as context:
            pipelines = await pipelines_app.start(context)
            payloads = await payloads_app.start(context)
            gateway = await gateway_app.start(context, address="127.0.0.1:0")
            try:
                yield f"127.0.0.1:{gateway.port}"
            finally:
                await gateway.stop(1.0)
                await payloads.stop(1.0)
                await pipelines.stop(1.0)
                await bus.close()


@contextlib.asynccontextmanager
async def peak_rss_growth() -> AsyncIterator[list[int]]:
    """Samples this process's RSS every 20 ms; yields a one-item list that holds, on exit, the
    largest growth over the RSS at entry."""
    process = psutil.Process()
    baseline = process.memory_info().rss
    peak = [0]
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], process.memory_info().rss - baseline)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.02)

    sampler = asyncio.create_task(sample())
    try:
        yield peak
    finally:
        stop.set()
        await sampler


@pytest.fixture
def big_file(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    path = tmp_path / "big.raw"
    yield path, write_big_file(path)
    path.unlink(missing_ok=True)


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_nvidias_payloads_client_end_to_end(target: str, big_file: tuple[Path, str]) -> None:
    path, big_digest = big_file
    async with peak_rss_growth() as growth:
        # The client blocks; it runs in a thread so this loop keeps serving it.
        result = await asyncio.to_thread(
            run_clara_python, SNIPPET, args=[target, str(path)], timeout=200
        )
    assert result.returncode == 0, result.stderr
    seen: dict[str, Any] = json.loads(result.stdout)
    payload_id = seen["id"]
    assert len(payload_id) == 32 and seen["type"] == 2

    assert seen["uploaded"] == [
        ["/input/a.txt", 5, 0],
        ["/input/series/0001.dcm", 200000, 0],
        ["/input/volumes/big.raw", BIG_BYTES, 0],
    ]
    assert seen["details"] == {
        "id": payload_id,
        "type": 2,
        "metadata": {"study": "ct-1"},
        "files": sorted(seen["uploaded"]),
    }
    assert seen["big"] == ["/input/volumes/big.raw", BIG_BYTES, BIG_BYTES, big_digest]
    small_digest = hashlib.sha256(b"d" * 200000).hexdigest()
    assert seen["small"] == ["/input/series/0001.dcm", 200000, small_digest]
    assert growth[0] < MAX_RSS_GROWTH, f"the gateway's process grew by {growth[0]} bytes"

    assert seen["after_remove"] == sorted(seen["uploaded"])[1:]
    assert f"payload {payload_id} has no file named 'input/a.txt'" in seen["remove_again"]
    assert f"payload {payload_id} has no file named 'input/a.txt'" in seen["download_missing"]

    assert seen["added"] == {"study": "ct-1", "Site": "north"}
    assert "'SITE' already exists" in seen["duplicate"]
    assert seen["after_remove_metadata"] == {"Site": "north"}

    dots, absolute, escaping = seen["refused"]
    assert "file name '../escape.txt' is not valid: it has a '..' path segment" in dots
    assert "file name '/etc/passwd' is not valid: it is an absolute path" in absolute
    assert "'..' path segment" in escaping
    # NVIDIA's client sends no message at all for an empty file: nothing names it.
    assert "the upload stream carried no file" in seen["empty_file"]
    # An empty payload is one Details message without a file, which the client shows as one
    # nameless entry (it cannot tell a message without a file from one with an empty file).
    assert seen["empty_payload"][1] == [["", 0, 0]]

    assert f"no payload has id {payload_id}" in seen["after_delete"]
    assert "no payload has id 0123456789abcdef0123456789abcdef" in seen["unknown"]
