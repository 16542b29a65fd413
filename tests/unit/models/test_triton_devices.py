"""How a tritonserver child gets its GPUs: its command line and environment for no GPU, one GPU
and two GPUs, with the memory pools the settings size."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from aorta.triton.local.install import TritonInstall
from aorta.triton.local.process import TritonProcess
from aorta.triton.server_flags import MemoryPools

MiB = 1024**2


def process(
    tmp_path: Path, gpus: tuple[int, ...], pools: MemoryPools | None = None
) -> TritonProcess:
    install = TritonInstall(
        binary=tmp_path / "bin" / "tritonserver",
        backends=tmp_path / "backends",
        stub=None,
        libraries=(tmp_path / "libs",),
        interpreter_bin=Path(sys.executable).parent,
    )
    return TritonProcess(
        install,
        repository=tmp_path / "repository",
        backends=tmp_path / "work" / "backends",
        log_file=tmp_path / "s1.log",
        environ={"PATH": "/usr/bin", "CUDA_VISIBLE_DEVICES": "0,1,2,3"},
        gpus=gpus,
        pools=pools,
    )


def pool_flags(command: list[str]) -> list[str]:
    return [flag for flag in command if "memory-pool" in flag or "gpu-metrics" in flag]


def test_without_a_gpu_the_server_runs_with_the_cpu_flags_and_sees_no_device(
    tmp_path: Path,
) -> None:
    server = process(tmp_path, ())
    command = server.command(8000, 8001, 8002)
    assert command[0] == str(tmp_path / "bin" / "tritonserver")
    assert pool_flags(command) == [
        "--allow-gpu-metrics=false",
        "--pinned-memory-pool-byte-size=0",
        "--cuda-memory-pool-byte-size=0:0",
    ]
    assert server.environment["CUDA_VISIBLE_DEVICES"] == ""
    assert "--model-control-mode=explicit" in command
    assert f"--model-repository={tmp_path / 'repository'}" in command
    assert f"--backend-directory={tmp_path / 'work' / 'backends'}" in command
    for flag in ("--http-address=127.0.0.1", "--grpc-address=127.0.0.1"):
        assert flag in command
    assert {"--http-port=8000", "--grpc-port=8001", "--metrics-port=8002"} <= set(command)


def test_one_gpu_is_the_assigned_device_with_a_pool_on_it(tmp_path: Path) -> None:
    server = process(tmp_path, (2,))
    assert server.environment["CUDA_VISIBLE_DEVICES"] == "2"
    assert server.environment["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert pool_flags(server.command(8000, 8001, 8002)) == [
        f"--pinned-memory-pool-byte-size={256 * MiB}",
        f"--cuda-memory-pool-byte-size=0:{64 * MiB}",
    ]


def test_two_gpus_are_exactly_the_indices_assigned_each_with_its_pool(tmp_path: Path) -> None:
    server = process(tmp_path, (3, 1))
    assert server.environment["CUDA_VISIBLE_DEVICES"] == "3,1"
    # The server numbers what it sees from 0, whatever the node's indices.
    assert pool_flags(server.command(8000, 8001, 8002)) == [
        f"--pinned-memory-pool-byte-size={256 * MiB}",
        f"--cuda-memory-pool-byte-size=0:{64 * MiB}",
        f"--cuda-memory-pool-byte-size=1:{64 * MiB}",
    ]
    assert "--allow-gpu-metrics=false" not in server.command(8000, 8001, 8002)


@pytest.mark.parametrize(("cuda", "pinned"), [(512 * MiB, 0), (0, 1024**3)])
def test_the_pool_sizes_come_from_the_settings(tmp_path: Path, cuda: int, pinned: int) -> None:
    server = process(tmp_path, (0, 1), MemoryPools(cuda_bytes=cuda, pinned_bytes=pinned))
    assert pool_flags(server.command(1, 2, 3)) == [
        f"--pinned-memory-pool-byte-size={pinned}",
        f"--cuda-memory-pool-byte-size=0:{cuda}",
        f"--cuda-memory-pool-byte-size=1:{cuda}",
    ]


def test_the_install_paths_stay_in_the_environment(tmp_path: Path) -> None:
    environment = process(tmp_path, (0,)).environment
    assert environment["LD_LIBRARY_PATH"] == str(tmp_path / "libs")
    assert environment["PATH"] == f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
