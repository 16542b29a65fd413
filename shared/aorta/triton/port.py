"""The Triton backend port: where the models service's pool gets its inference servers.

The pool (`aorta_services.models.pool`) decides which server serves which job; a backend only
starts servers, puts model folders where its servers can load them, and loads and unloads
models on a server. Two adapters implement it: `aorta.triton.local` (tritonserver child
processes on this machine, the embedded default) and `aorta.triton.kubernetes` (a Deployment and
a Service per server, the model repository in the S3 blob store). Errors are `aorta.errors`
only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

ArchiveWriter = Callable[[Path], Awaitable[None]]
"""Writes a model's ZIP archive to the given path (the pool streams it from the blob store)."""


class TritonServer(Protocol):
    """One running Triton Inference Server.

    `grpc_uri` and `http_uri` are `host:port` without a scheme, as Clara hands them to operators
    (`NVIDIA_TRITON_GRPCURI`, `NVIDIA_TRITON_HTTPURI`).
    """

    id: str

    @property
    def grpc_uri(self) -> str: ...

    @property
    def http_uri(self) -> str: ...

    def alive(self) -> bool:
        """False once the server is known to have stopped or died (cheap, no I/O)."""
        ...

    async def load(self, model: str) -> None:
        """Loads `model` from the backend's repository, or reloads it when its files changed.

        Returns once Triton reports it ready. `Invalid` (MODEL_ARCHIVE_INVALID) carrying
        Triton's own error text when Triton cannot load it; `Unavailable` when the server does
        not answer or the load outlives the backend's load timeout.
        """
        ...

    async def unload(self, model: str) -> None:
        """Asks Triton to unload `model`; `Unavailable` when the server does not answer."""
        ...

    async def ready_models(self) -> set[str]:
        """The models Triton's repository index reports READY on this server."""
        ...

    async def stop(self) -> None:
        """Stops the server (gracefully, then by force after the backend's grace). Idempotent."""
        ...


class TritonBackend(Protocol):
    """Starts servers and keeps the model repository they load from."""

    async def start_server(self, server_id: str, gpus: Sequence[int] = ()) -> TritonServer:
        """A new, empty server, ready to load models. `Unavailable` when it cannot start.

        `gpus` are the node's device indices (NVML's numbering) the pool assigned the server:
        a backend that places servers on this node gives it exactly those devices, and none
        (the CPU-only flags) when empty. A backend whose servers run elsewhere (Kubernetes)
        lets its scheduler pick the devices and ignores them.
        """
        ...

    async def install_model(self, name: str, revision: str, write_archive: ArchiveWriter) -> None:
        """Makes revision `revision` of model `name` loadable by every server of this backend.

        Does nothing when that revision is already installed; otherwise calls `write_archive`
        to get the archive and expands it, replacing the previous revision's files (servers
        that already loaded the previous revision keep serving it until they reload).
        `Invalid` (MODEL_ARCHIVE_INVALID) when the archive cannot be expanded.
        """
        ...

    async def remove_model(self, name: str) -> None:
        """Removes the model's files from the repository (loaded copies are not touched)."""
        ...

    async def close(self) -> None:
        """Releases what the backend holds (its servers must have been stopped). Idempotent."""
        ...


@runtime_checkable
class LastingServers(Protocol):
    """A backend whose servers outlive the models replica that started them (containers,
    Kubernetes Deployments): any replica can remove any of them by id, so a survivor stops
    the servers a dead replica left. Local tritonserver children die with their replica, so
    the local backend has no such method."""

    async def remove_server(self, server_id: str) -> None:
        """Removes server `server_id`, whichever replica started it; nothing when it is gone."""
        ...
