"""Which GPUs a Triton server gets: pure, no I/O.

The rules (docs/models.md, "How Triton gets its GPUs"):

1. Triton may use the node's devices `available` (`AORTA_TRITON_GPUS`, by default the
   scheduler's GPUs, else every GPU NVML sees); none means every server runs on the CPU.
2. A job that was given GPUs (the devices the scheduler reserved for it when it admitted it)
   gets a server on those of them Triton may use, at most `per_server` of them, lowest first: the
   job's inference runs on the devices the job holds rather than on another job's.
3. A server for a job without GPUs gets the `per_server` devices the fewest servers use now
   (lowest index first on ties), so servers spread over the node's GPUs.

Devices are node indices as NVML counts them; the backends turn them into what a server sees.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def job_devices(
    job_gpus: Sequence[int], available: Sequence[int], per_server: int
) -> tuple[int, ...] | None:
    """The devices a server of a job given `job_gpus` must have (rule 2), or None when that
    leaves none and any server will do."""
    allowed = set(available)
    mine = sorted(index for index in dict.fromkeys(job_gpus) if index in allowed)
    return tuple(mine[:per_server]) or None


def spread_devices(
    available: Sequence[int], in_use: Iterable[Sequence[int]], per_server: int
) -> tuple[int, ...]:
    """The `per_server` devices of `available` the fewest servers use (rule 3), ascending;
    empty when Triton may use no device or `per_server` is 0."""
    servers = dict.fromkeys(available, 0)
    for devices in in_use:
        for index in devices:
            if index in servers:
                servers[index] += 1
    chosen = sorted(servers, key=lambda index: (servers[index], index))[:per_server]
    return tuple(sorted(chosen))
