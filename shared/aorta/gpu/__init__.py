"""GPU metrics: the probe port, what a sample holds, who owns a GPU process, the NVML adapter.

`GpuProbe` reads a node's GPUs into `GpuSample`s (`aorta.gpu.nvml.NvmlProbe` through NVML,
empty without a driver); `ProcessOwners` tells which job operator a GPU process runs for;
`NodeSample` is what a node monitor publishes on the bus; `gpu_count` sizes a node for the
scheduler.
"""

from aorta.gpu.nvml import NvmlProbe, gpu_count
from aorta.gpu.owners import ProcEnvironOwners
from aorta.gpu.port import GpuProbe, ProcessOwners
from aorta.gpu.sample import (
    MEGABYTE,
    GpuProcess,
    GpuSample,
    NodeSample,
    ProcessOwner,
    mb,
    pcie_id_of,
)

__all__ = [
    "MEGABYTE",
    "GpuProbe",
    "GpuProcess",
    "GpuSample",
    "NodeSample",
    "NvmlProbe",
    "ProcEnvironOwners",
    "ProcessOwner",
    "ProcessOwners",
    "gpu_count",
    "mb",
    "pcie_id_of",
]
