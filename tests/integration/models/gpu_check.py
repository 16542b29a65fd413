"""On a machine with an NVIDIA GPU: a local Triton server runs on exactly the device it was given.

Not a pytest module (the test machines have no GPU); run it by hand where one is, from the
repository root: `python -m tests.integration.models.gpu_check`. It starts a tritonserver child
of the nvidia-pytriton wheel (a CUDA build) through the local backend, on the node's last device
with a 256 MiB CUDA pool, then checks that NVML lists the server's process on that device and on
no other, and that Triton's log says it made the pools the flags asked for. Exit status 0 when
all holds, 1 when something does not (each check printed), 2 without a GPU.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from aorta.gpu import NvmlProbe, gpu_count
from aorta.triton.local.backend import LocalTritonBackend
from aorta.triton.local.install import TritonInstall
from aorta.triton.server_flags import MemoryPools

CUDA_POOL = 256 * 1024**2
PINNED_POOL = 128 * 1024**2


async def check() -> int:
    """Runs the checks; the exit status (see the module docstring)."""
    count = await gpu_count()
    if count == 0:
        print("no GPU: nothing to check")
        return 2
    device = count - 1
    install = await asyncio.to_thread(TritonInstall.locate)
    pools = MemoryPools(cuda_bytes=CUDA_POOL, pinned_bytes=PINNED_POOL)
    with tempfile.TemporaryDirectory(prefix="aorta-gpu-check-") as root:
        backend = await LocalTritonBackend.open(
            Path(root), install, environ=os.environ, pools=pools
        )
        try:
            server = await backend.start_server("gpu-check", (device,))
            try:
                probe = NvmlProbe("gpu-check")
                samples = await probe.sample()
                await probe.close()
                pid = server.process.pid
                seen = [s.index for s in samples if any(p.pid == pid for p in s.processes)]
                log = server.process.log_file.read_text(errors="replace")
            finally:
                await server.stop()
        finally:
            await backend.close()
    checks = {
        f"the server's process is on device {device} alone (NVML: {seen})": seen == [device],
        "Triton made the CUDA pool on its device 0": (
            f"CUDA memory pool is created on device 0 with size {CUDA_POOL}" in log
        ),
        "Triton made the pinned pool": f"with size {PINNED_POOL}" in log,
    }
    for what, held in checks.items():
        print(("ok   " if held else "FAIL ") + what)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(check()))
