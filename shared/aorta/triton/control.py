"""Loading and unloading models on a Triton server at an address, over Triton's gRPC API.

What a `TritonServer` of every backend does, whatever runs the server (a child process, a
container, a pod behind its Service): a load Triton refuses is `Invalid` (MODEL_ARCHIVE_INVALID)
with Triton's own text, one that outlives the load timeout or meets a server that stopped is
`Unavailable`. `ControlledServer` is that part of every backend's `TritonServer`, so a backend
says only whether its server lives and how it ends.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import tritonclient.grpc.aio as triton_grpc  # type: ignore[import-untyped]
from tritonclient.utils import InferenceServerException  # type: ignore[import-untyped]

from aorta.errors import ErrorCode, Invalid, Unavailable
from aorta.triton.model_locks import ModelLocks

_INDEX_TIMEOUT = 10.0


class TritonControl:
    """The model-control calls to one server (`grpc_uri`, `http_uri`: `host:port`)."""

    def __init__(self, server_id: str, grpc_uri: str, http_uri: str, load_timeout: float) -> None:
        self.server_id = server_id
        self.grpc_uri = grpc_uri
        self.http_uri = http_uri
        self._load_timeout = load_timeout
        self._client: Any = None

    def _triton(self) -> Any:
        if self._client is None:
            self._client = triton_grpc.InferenceServerClient(self.grpc_uri)
        return self._client

    async def load(self, model: str, *, alive: Callable[[], bool]) -> None:
        """Loads (or reloads) `model`; returns once Triton reports it ready."""
        try:
            await self._triton().load_model(model, client_timeout=self._load_timeout)
        except InferenceServerException as exc:
            status = str(exc.status() or "")
            if "DEADLINE_EXCEEDED" in status:
                raise Unavailable(
                    f"model {model!r} did not load on Triton within {self._load_timeout:g} s "
                    "(AORTA_TRITON_LOAD_TIMEOUT)"
                ) from None
            if not alive() or "UNAVAILABLE" in status:
                raise Unavailable(
                    f"the Triton server {self.server_id} stopped while loading {model!r}"
                ) from None
            text = str(exc.message() or exc).strip().rstrip(";").strip()
            raise Invalid(
                f"model {model!r} failed to load on Triton: {text}",
                code=ErrorCode.MODEL_ARCHIVE_INVALID,
            ) from None

    async def unload(self, model: str) -> None:
        """Asks Triton to unload `model`."""
        try:
            await self._triton().unload_model(model, client_timeout=self._load_timeout)
        except InferenceServerException as exc:
            raise Unavailable(
                f"the Triton server {self.server_id} could not unload {model!r}: {exc.message()}"
            ) from None

    async def ready_models(self) -> set[str]:
        """The models the server's repository index reports READY."""
        try:
            index = await self._triton().get_model_repository_index(client_timeout=_INDEX_TIMEOUT)
        except InferenceServerException as exc:
            raise Unavailable(
                f"the Triton server {self.server_id} did not list its models: {exc.message()}"
            ) from None
        return {entry.name for entry in index.models if entry.state == "READY"}

    async def close(self) -> None:
        """Closes the gRPC channel (a later call opens a new one)."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()


class ControlledServer(abc.ABC):
    """The `TritonServer` calls every backend answers alike, through `control`.

    A load reads the model's files under `locks`, the backend's, so it never meets a folder
    being replaced; `stop` closes the gRPC channel, then `_halt` ends the server itself.
    """

    def __init__(self, id: str, control: TritonControl, locks: ModelLocks) -> None:
        self.id = id
        self._control = control
        self._locks = locks

    @property
    def grpc_uri(self) -> str:
        return self._control.grpc_uri

    @property
    def http_uri(self) -> str:
        return self._control.http_uri

    @abc.abstractmethod
    def alive(self) -> bool:
        """False once the server is known to have stopped or died (cheap, no I/O)."""

    async def load(self, model: str) -> None:
        async with self._locks(model).reading():
            await self._control.load(model, alive=self.alive)

    async def unload(self, model: str) -> None:
        await self._control.unload(model)

    async def ready_models(self) -> set[str]:
        return await self._control.ready_models()

    async def stop(self) -> None:
        await self._control.close()
        await self._halt()

    @abc.abstractmethod
    async def _halt(self) -> None:
        """Ends the server (its process, container or Deployment); idempotent."""
