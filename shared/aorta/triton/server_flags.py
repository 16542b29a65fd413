"""The tritonserver command line and the GPU environment of one server: pure, no I/O.

Both backends that run the server binary themselves (local child processes and containers)
build their command here, so a server gets the same flags wherever it runs:

- always `--model-control-mode=explicit` (it loads nothing until the pool asks) and
  `--exit-timeout-secs=10`;
- with no GPU assigned, the CPU-only flags: no pinned or CUDA memory pool and no GPU metrics,
  which a server without a CUDA device would otherwise fail or warn over;
- with GPUs assigned, a CUDA memory pool on every device the server sees and a pinned host
  memory pool, sized by `MemoryPools`. Triton numbers the devices it sees from 0 (CUDA
  renumbers the devices `CUDA_VISIBLE_DEVICES` or a container's device request expose), so the
  pool flags name ordinals 0..n-1, not the node's device indices.

`device_environment` is what makes a host process see exactly its assigned devices, numbered as
NVML and the scheduler number them (PCI bus order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_CUDA_POOL_BYTES = 64 * 1024**2
"""Triton's own default CUDA memory pool per device (64 MiB)."""

DEFAULT_PINNED_POOL_BYTES = 256 * 1024**2
"""Triton's own default pinned host memory pool (256 MiB)."""

CPU_ONLY_FLAGS = (
    "--allow-gpu-metrics=false",
    "--pinned-memory-pool-byte-size=0",
    "--cuda-memory-pool-byte-size=0:0",
)
"""The flags of a server without GPUs."""


@dataclass(frozen=True)
class MemoryPools:
    """The memory pools of a server with GPUs: `cuda_bytes` on each of its devices (Triton's
    `--cuda-memory-pool-byte-size`), `pinned_bytes` of page-locked host memory
    (`--pinned-memory-pool-byte-size`)."""

    cuda_bytes: int = DEFAULT_CUDA_POOL_BYTES
    pinned_bytes: int = DEFAULT_PINNED_POOL_BYTES


@dataclass(frozen=True)
class Listen:
    """Where a server listens: one address for HTTP, gRPC and metrics, and the three ports."""

    address: str
    http: int
    grpc: int
    metrics: int


def device_flags(gpus: Sequence[int], pools: MemoryPools) -> list[str]:
    """The memory pool and metrics flags of a server given the devices `gpus` (none: CPU)."""
    if not gpus:
        return list(CPU_ONLY_FLAGS)
    return [
        f"--pinned-memory-pool-byte-size={pools.pinned_bytes}",
        *(
            f"--cuda-memory-pool-byte-size={ordinal}:{pools.cuda_bytes}"
            for ordinal in range(len(gpus))
        ),
    ]


def server_flags(
    *,
    repository: str,
    listen: Listen,
    gpus: Sequence[int],
    pools: MemoryPools,
    backends: str | None = None,
) -> list[str]:
    """Every flag of `tritonserver` (without the binary): the model repository, explicit model
    control, the listening address and ports, the backends folder when given (else the
    server's own), then `device_flags`."""
    flags = [f"--model-repository={repository}", "--model-control-mode=explicit"]
    if backends is not None:
        flags.append(f"--backend-directory={backends}")
    flags += [
        f"--http-address={listen.address}",
        f"--http-port={listen.http}",
        f"--grpc-address={listen.address}",
        f"--grpc-port={listen.grpc}",
        f"--metrics-address={listen.address}",
        f"--metrics-port={listen.metrics}",
    ]
    return [*flags, *device_flags(gpus, pools), "--exit-timeout-secs=10"]


def device_environment(gpus: Sequence[int]) -> dict[str, str]:
    """The variables that give a host process exactly the devices `gpus` (node indices).

    `CUDA_DEVICE_ORDER=PCI_BUS_ID` makes CUDA number devices as NVML does (CUDA's default puts
    the fastest first), so index 1 here is the device the scheduler calls 1. With no GPU,
    `CUDA_VISIBLE_DEVICES` is empty: the server sees none even on a node that has some.
    """
    return {
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "CUDA_VISIBLE_DEVICES": ",".join(str(index) for index in gpus),
    }
