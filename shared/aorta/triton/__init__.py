"""Triton Inference Server for the models service: the backend port and its adapters.

`aorta.triton.port` is the port (`TritonBackend`, `TritonServer`); `aorta.triton.local` runs
tritonserver child processes from the tree its `install` module finds, `aorta.triton.kubernetes`
runs each server as a Deployment; `aorta.triton.archive` checks and expands uploaded model
archives and `aorta.triton.model_locks` orders loads against uses of a model. Importing this
package loads no Triton client library.
"""

from aorta.triton.port import ArchiveWriter, LastingServers, TritonBackend, TritonServer

__all__ = ["ArchiveWriter", "LastingServers", "TritonBackend", "TritonServer"]
