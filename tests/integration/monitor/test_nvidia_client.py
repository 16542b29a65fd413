"""NVIDIA's own `ClaraClient` (nvidia-clara-client 0.8.1.7, in its own virtualenv and process)
against the gateway and the monitor on a real nats-server: Version, a Utilization snapshot, a
watched Utilization stream it stops after three samples, and Stop. The monitor sees no GPU (a
stand-in probe), so the utilization lists are empty, and they must come quickly."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from structlog.testing import capture_logs

from aorta.testing.clara_client import run_clara_python
from aorta_services.monitor.handlers import version_message

CLIENT = r"""
import json, sys, time
from nvidia_clara.clara_client import ClaraClient

client = ClaraClient(sys.argv[1], sys.argv[2])
report = {}
version = client.version(timeout=10)
report["version"] = [version.major, version.minor, version.patch, version.label]

started = time.monotonic()
report["listed"] = [len(details.gpu_metrics) for details in client.list_utilization(timeout=10)]
report["list_seconds"] = time.monotonic() - started

# stream_utilization is a generator over the gRPC call; closing it drops the call, which
# cancels the RPC (grpc cancels a call whose last reference goes away).
stream = client.stream_utilization(timeout=60)
report["streamed"] = []
started = time.monotonic()
for details in stream:
    report["streamed"].append(len(details.gpu_metrics))
    if len(report["streamed"]) == 3:
        break
stream.close()
report["stream_seconds"] = time.monotonic() - started

client.stop(timeout=10)
report["stopped"] = True
print(json.dumps(report))
"""


async def test_nvidia_client_reads_version_utilization_and_stops(platform: Any) -> None:
    with capture_logs() as logs:
        result = await asyncio.to_thread(
            run_clara_python, CLIENT, args=["127.0.0.1", str(platform.port)], timeout=90
        )
        assert result.returncode == 0, result.stderr
        deadline = asyncio.get_running_loop().time() + 30
        while not any(e["event"] == "monitor.watch_ended" for e in logs):
            assert asyncio.get_running_loop().time() < deadline, "the watch never ended"
            await asyncio.sleep(0.02)
    report = json.loads(result.stdout)
    ours = version_message()
    assert report["version"] == [ours.major, ours.minor, ours.patch, ours.label]
    assert report["listed"] == [0]
    assert report["list_seconds"] < 2.0
    assert report["streamed"] == [0, 0, 0]
    assert report["stream_seconds"] < 3 * platform.interval + 2.0
    assert report["stopped"] is True
