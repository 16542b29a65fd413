"""Triton Inference Server for the models service: the backend port and its local adapter.

`aorta.triton.port` is the port (`TritonBackend`, `TritonServer`); `aorta.triton.local` runs
tritonserver child processes (`aorta.triton.process`) from the tree `aorta.triton.install`
finds; `aorta.triton.archive` checks and expands uploaded model archives. Importing this package
loads no Triton client library.
"""

from aorta.triton.port import ArchiveWriter, TritonBackend, TritonServer

__all__ = ["ArchiveWriter", "TritonBackend", "TritonServer"]
