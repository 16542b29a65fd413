"""The container engine, through the Docker Engine API (aiodocker): the executor's only driver.

Works with Docker Engine and with Podman's Docker-compatible API service alike; `kind` says
which answered (`aorta.executors.container.devices`). Every engine error is translated here,
once: 404 is `NotFound`, 409 `Conflict`, an engine that cannot be reached `Unavailable`, and
anything else the engine refuses (a failed pull, a bad create body) `Invalid` carrying the
engine's own reason.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import aiodocker
import aiohttp
from aiodocker.containers import DockerContainer
from aiodocker.multiplexed import multiplexed_result_stream
from aiodocker.types import SENTINEL

from aorta.errors import Conflict, Invalid, NotFound, Unavailable
from aorta.executors.container.devices import EngineKind, engine_kind
from aorta.executors.container.libpod_spec import CreateApi, CreateRequest

Json = dict[str, Any]

_UNREACHABLE = 900  # aiodocker's status for a connection that failed
_DOCKER_HUB = "docker.io/"
_LIBPOD_CREATE = "v4.0.0/libpod/containers/create"
"""Podman's own create (for CDI devices); aiodocker has no call for it, so it is sent through
the client's raw query."""
_IN_USE = "already in use"
_INSPECT_TRIES = 5
_INSPECT_PAUSE = 0.05


class ContainerEngine:
    """One connection to an engine; `connect` opens it, `close` releases it."""

    def __init__(
        self,
        docker: aiodocker.Docker,
        kind: EngineKind,
        url: str,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._docker = docker
        self._session = session
        self.kind = kind
        self.url = url

    @classmethod
    async def connect(cls, url: str) -> ContainerEngine:
        """Connects to the engine at `url` (`unix:///path`, `tcp://host:port`) and asks what it
        is. `Unavailable` when nothing answers there.

        Each running container holds two requests open (its wait and its log), so the
        connection pool has no limit: aiohttp's default of 100 would leave every other call
        waiting once fifty operators run.
        """
        session = _unlimited_session(url)
        docker = aiodocker.Docker(url=url, session=session)
        try:
            with _translated(f"the container engine at {url}"):
                # One unversioned /version both names the engine and pins the API version:
                # `version()` would ask twice, and Podman takes a second or two to answer.
                version = await docker._query_json("version", versioned_api=False)
                if version.get("ApiVersion"):
                    docker.api_version = f"v{version['ApiVersion']}"
        except BaseException:
            await docker.close()
            if session is not None:
                await session.close()
            raise
        return cls(docker, engine_kind(version), url, session)

    async def close(self) -> None:
        """Closes the connection; containers keep running. Idempotent."""
        await self._docker.close()
        if self._session is not None:
            await self._session.close()

    async def image_present(self, reference: str) -> bool:
        """Whether the engine holds `reference` (as a pipeline names it: a Podman engine also
        finds `localhost/...` images by their short name)."""
        try:
            with _translated(f"image {reference}"):
                await self._docker.images.inspect(reference)
        except NotFound:
            return False
        return True

    async def image(self, reference: str) -> Json:
        """The image's inspect document (its `Config` names the ports it exposes); `NotFound`
        when the engine does not hold it."""
        with _translated(f"image {reference}"):
            inspected: Json = await self._docker.images.inspect(reference)
        return inspected

    async def pull(self, reference: str, credentials: Mapping[str, str] | None) -> None:
        """Pulls `reference`, with registry credentials when given. The engine's reason, with
        the image's name, when it cannot (no registry reachable, refused, bad credentials)."""
        first, slash, _ = reference.partition("/")
        names_registry = slash and ("." in first or ":" in first or first == "localhost")
        # aiodocker takes the registry of the credentials from the name's first component.
        source = reference if credentials is None or names_registry else _DOCKER_HUB + reference
        with _translated(f"image {reference} could not be pulled"):
            await self._docker.images.pull(source, auth=dict(credentials) if credentials else None)

    async def create(self, name: str, request: CreateRequest) -> str:
        """Creates a container named `name` as `request` says; its id. `Conflict` when the name
        is taken, `NotFound` when the image is missing."""
        with _translated(f"container {name}"):
            if request.api is CreateApi.LIBPOD:
                answer = await self._docker._query_json(
                    _LIBPOD_CREATE,
                    "POST",
                    data=json.dumps({**request.body, "name": name}),
                    versioned_api=False,
                )
                return str(answer["Id"])
            container = await self._docker.containers.create(request.body, name=name)
        return container.id

    async def start(self, name: str) -> None:
        """Starts the created container `name` (a no-op for one already running)."""
        with _translated(f"container {name} could not start"):
            await self._docker.containers.container(name).start()

    async def inspect(self, name: str) -> Json | None:
        """The container's inspect document, or None when there is no such container.

        Podman fails an inspect that races the container's exit (`read /proc/PID/cgroup: no
        such process`, status 500): such a failure is tried again a few times."""
        for attempt in range(1, _INSPECT_TRIES):
            try:
                return await self._inspect_once(name)
            except Invalid as error:
                if not _engine_failed(error):
                    raise
            await asyncio.sleep(_INSPECT_PAUSE * attempt)
        return await self._inspect_once(name)

    async def _inspect_once(self, name: str) -> Json | None:
        try:
            with _translated(f"container {name}"):
                return await self._docker.containers.container(name).show()
        except NotFound:
            return None

    async def list(self, labels: Mapping[str, str]) -> list[Json]:
        """Every container, running or not, carrying all of `labels` (the engine's summaries:
        `Id`, `Names`, `Labels`, `State`)."""
        filters = json.dumps({"label": [f"{key}={value}" for key, value in labels.items()]})
        with _translated("the container list"):
            found = await self._docker.containers.list(all="true", filters=filters)
        return [dict(container._container) for container in found]

    async def wait(self, name: str) -> int:
        """Waits until the container has stopped; its exit code."""
        with _translated(f"container {name}"):
            answer = await self._docker.containers.container(name).wait()
        return int(answer.get("StatusCode", -1))

    async def stop(self, name: str, grace: float) -> None:
        """SIGTERM (or the image's stop signal), SIGKILL after `grace` seconds; returns once the
        container has stopped. Nothing happens for one already stopped."""
        with _translated(f"container {name} could not be stopped"):
            await self._docker.containers.container(name).stop(t=max(0, round(grace)))

    async def remove(self, name: str) -> None:
        """Removes the container (killing it if it still runs); nothing when it is gone."""
        try:
            with _translated(f"container {name} could not be removed"):
                await self._docker.containers.container(name).delete(force=True)
        except NotFound:
            return

    async def logs(self, name: str, *, follow: bool) -> AsyncIterator[bytes]:
        """The container's stdout and stderr from its start, interleaved, as UTF-8 bytes; with
        `follow`, until it stops. A stream the engine fails before its first byte (the client
        inspects the container first, which races its exit on Podman) is asked for again."""
        for attempt in range(1, _INSPECT_TRIES + 1):
            started = False
            try:
                async for chunk in self._log_stream(name, follow=follow):
                    started = True
                    yield chunk
                return
            except Invalid as error:
                if started or attempt == _INSPECT_TRIES or not _engine_failed(error):
                    raise
            await asyncio.sleep(_INSPECT_PAUSE * attempt)

    async def _log_stream(self, name: str, *, follow: bool) -> AsyncIterator[bytes]:
        container = self._docker.containers.container(name)
        with _translated(f"the log of container {name}"):
            if follow:
                async for text in self._followed(container):
                    yield text.encode("utf-8")
            else:
                for text in await container.log(stdout=True, stderr=True):
                    yield text.encode("utf-8")

    async def _followed(self, container: DockerContainer) -> AsyncIterator[str]:
        """The container's followed log, as aiodocker's `log(follow=True)` streams it, but
        closing the response when the reader stops early (aiodocker leaves it to the garbage
        collector, which then warns about an unclosed connection)."""
        tty = bool(((await container.show()).get("Config") or {}).get("Tty"))
        query = self._docker._query(
            f"containers/{container.id}/logs",
            params={"stdout": True, "stderr": True, "follow": True},
            timeout=self._docker._resolve_long_running_timeout(SENTINEL),
        )
        async with query as response:
            try:
                # aiodocker's own decoder of the log stream; its module has no annotations.
                stream = multiplexed_result_stream(response, is_tty=tty)  # type: ignore[no-untyped-call]
                async for text in stream:
                    yield str(text)
            finally:
                response.close()


def _engine_failed(error: Invalid) -> bool:
    """Whether `error` is the engine's own failure (a 5xx), not a refusal of the request."""
    cause = error.__cause__
    return isinstance(cause, aiodocker.DockerError) and cause.status >= 500


def _unlimited_session(url: str) -> aiohttp.ClientSession | None:
    """A session whose pool has no limit for a `unix://` engine; None (the client's own
    session, which also knows Docker's TLS settings) for other addresses."""
    if not url.startswith("unix://"):
        return None
    connector = aiohttp.UnixConnector(url[len("unix://") :], limit=0)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout())


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turns aiodocker's errors into the platform's (module docstring)."""
    try:
        yield
    except aiodocker.DockerError as error:
        reason = f"{what}: {error.message}"
        if error.status == 409 or _IN_USE in error.message:
            raise Conflict(reason) from error
        if error.status == 404:
            raise NotFound(reason) from error
        if error.status == _UNREACHABLE:
            raise Unavailable(reason) from error
        raise Invalid(reason) from error
    except (aiohttp.ClientError, OSError) as error:
        raise Unavailable(f"{what}: the container engine did not answer ({error})") from error
