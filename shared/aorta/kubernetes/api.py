"""The Kubernetes API as Aorta uses it: the one module that imports the client library.

`kubernetes_asyncio` mirrors the official `kubernetes` client (same generated models and
methods, same kubeconfig and in-cluster loaders, same watch) over aiohttp instead of threads, so
every call here is a cancellable coroutine: a watch or a log stream that is cancelled closes
its connection at once, where the threaded client would leave a thread blocked in a socket read.

Objects go in and come out as plain JSON-shaped dicts (camelCase keys, as in a manifest), built
without the client by the modules that make them and validated against the OpenAPI schemas in
the tests, while the client still deserialises every request and answer into its models on the
way, so required fields are checked by the client as with any other caller. Errors are
translated once, here: 404 → `NotFound`, 409 → `Conflict`, 410 → `Expired`, 400/422 →
`Invalid`, 401/403 → `Internal` (a configuration or RBAC mistake that retrying cannot fix), the
rest and any connection failure → `Unavailable`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aiohttp
from kubernetes_asyncio import config, watch
from kubernetes_asyncio.client import ApiClient, AppsV1Api, Configuration, CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from aorta.errors import AortaError, Conflict, Internal, Invalid, NotFound, Unavailable

Json = dict[str, Any]

_REQUEST_TIMEOUT = 60.0
"""Seconds one ordinary call may take; watches and log streams have their own bounds."""


class Expired(AortaError):
    """A watch's resourceVersion is too old (410 Gone): list again, then watch from there."""


@dataclass(frozen=True)
class Kind:
    """One resource kind: its client model, API group class and method suffix."""

    model: str
    group: str
    plural_method: str


POD = Kind("V1Pod", "core", "pod")
SERVICE = Kind("V1Service", "core", "service")
DEPLOYMENT = Kind("V1Deployment", "apps", "deployment")
PERSISTENT_VOLUME_CLAIM = Kind("V1PersistentVolumeClaim", "core", "persistent_volume_claim")


@dataclass(frozen=True)
class Listing:
    """The objects a list returned and the resourceVersion to watch from."""

    items: list[Json]
    resource_version: str


@dataclass(frozen=True)
class WatchEvent:
    """One watch event: ADDED, MODIFIED, DELETED or BOOKMARK, and the object."""

    type: str
    object: Json


class KubeApi:
    """A connection to one cluster. Every method may raise the errors the module lists."""

    def __init__(self, client: ApiClient) -> None:
        self._client = client
        self._groups: dict[str, Any] = {"core": CoreV1Api(client), "apps": AppsV1Api(client)}

    @classmethod
    async def connect(cls, kubeconfig: str = "", context: str = "") -> KubeApi:
        """Connects with a kubeconfig file, or with the pod's service account when empty."""
        configuration = Configuration()
        try:
            if kubeconfig:
                await config.load_kube_config(
                    config_file=kubeconfig,
                    context=context or None,
                    client_configuration=configuration,
                    persist_config=False,
                )
            else:
                # The one loader the library's stubs leave unannotated.
                config.load_incluster_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration
                )
        except (config.ConfigException, OSError) as error:
            where = kubeconfig or "the in-cluster service account"
            raise Unavailable(f"cannot load Kubernetes credentials from {where}: {error}") from None
        return cls(ApiClient(configuration))

    async def close(self) -> None:
        """Closes the connection pool; the object must not be used afterwards."""
        await self._client.close()

    async def create(self, kind: Kind, namespace: str, manifest: Json) -> Json:
        """Creates the object; `Conflict` when one of that name exists."""
        body = self._model(manifest, kind)
        method = self._method(kind, f"create_namespaced_{kind.plural_method}")
        return await self._call(method(namespace, body, _request_timeout=_REQUEST_TIMEOUT))

    async def read(self, kind: Kind, namespace: str, name: str) -> Json:
        """The object; `NotFound` when absent."""
        method = self._method(kind, f"read_namespaced_{kind.plural_method}")
        return await self._call(method(name, namespace, _request_timeout=_REQUEST_TIMEOUT))

    async def patch(self, kind: Kind, namespace: str, name: str, patch: Json) -> Json:
        """Applies a strategic-merge patch (the client's default for a dict body)."""
        method = self._method(kind, f"patch_namespaced_{kind.plural_method}")
        return await self._call(method(name, namespace, patch, _request_timeout=_REQUEST_TIMEOUT))

    async def list(self, kind: Kind, namespace: str, selector: str, *, fields: str = "") -> Listing:
        """Every object matching the label selector (and field selector `fields`), and the
        list's resourceVersion."""
        method = self._method(kind, f"list_namespaced_{kind.plural_method}")
        answer = await self._call(
            method(
                namespace,
                label_selector=selector,
                field_selector=fields,
                _request_timeout=_REQUEST_TIMEOUT,
            )
        )
        metadata = answer.get("metadata") or {}
        return Listing(list(answer.get("items") or ()), str(metadata.get("resourceVersion", "")))

    async def delete(self, kind: Kind, namespace: str, name: str, *, grace: int) -> None:
        """Asks for the object's deletion with `grace` seconds for its containers to stop;
        `NotFound` when it is already gone. Dependents are removed in the background."""
        method = self._method(kind, f"delete_namespaced_{kind.plural_method}")
        await self._call(
            method(
                name,
                namespace,
                grace_period_seconds=grace,
                propagation_policy="Background",
                _request_timeout=_REQUEST_TIMEOUT,
            )
        )

    async def watch(
        self,
        kind: Kind,
        namespace: str,
        selector: str,
        resource_version: str,
        *,
        lasting: int,
        fields: str = "",
    ) -> AsyncIterator[WatchEvent]:
        """Events after `resource_version` until the server ends the watch (after about
        `lasting` seconds); `Expired` when that version is too old to resume from."""
        method = self._method(kind, f"list_namespaced_{kind.plural_method}")
        stream = watch.Watch(return_type=kind.model)
        try:
            async with stream:
                events = stream.stream(
                    method,
                    namespace,
                    label_selector=selector,
                    field_selector=fields,
                    resource_version=resource_version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=lasting,
                    _request_timeout=aiohttp.ClientTimeout(sock_connect=30, sock_read=lasting + 30),
                )
                async for event in events:
                    yield WatchEvent(str(event["type"]), dict(event["raw_object"]))
        except ApiException as error:
            raise _translate(error) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise Unavailable(f"the Kubernetes API watch failed: {error!r}") from None

    async def pod_log(self, namespace: str, name: str, container: str) -> AsyncIterator[bytes]:
        """The container's log so far, streamed in chunks; `NotFound` when the pod is gone,
        `Invalid` when the container has not started yet."""
        core: CoreV1Api = self._groups["core"]
        try:
            response = await core.read_namespaced_pod_log(
                name,
                namespace,
                container=container,
                _preload_content=False,
                _request_timeout=aiohttp.ClientTimeout(sock_connect=30, sock_read=60),
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise Unavailable(f"the Kubernetes API cannot be reached: {error!r}") from None
        # The stubs type the answer as the log text; unread (`_preload_content=False`) it is the
        # aiohttp response itself, streamed here so a long log never sits in memory whole.
        reply: aiohttp.ClientResponse = response  # type: ignore[assignment]
        try:
            if reply.status >= 300:
                body = await reply.read()
                raise _translate(
                    ApiException(status=reply.status, reason=body.decode(errors="replace"))
                )
            async for chunk in reply.content.iter_chunked(1 << 16):
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as error:
            raise Unavailable(f"reading the log of pod {name!r} failed: {error!r}") from None
        finally:
            reply.release()

    def _method(self, kind: Kind, name: str) -> Any:
        return getattr(self._groups[kind.group], name)

    def _model(self, manifest: Json, kind: Kind) -> Any:
        # The client's own deserialiser (as its watch uses it): a manifest missing a field the
        # model requires fails here, before any request.
        try:
            return self._client.deserialize(
                SimpleNamespace(data=json.dumps(manifest)),  # type: ignore[arg-type]
                kind.model,
            )
        except (ValueError, TypeError) as error:
            raise Invalid(f"{kind.model} manifest rejected by the client: {error}") from None

    async def _call(self, pending: Any) -> Json:
        try:
            answer = await pending
        except ApiException as error:
            raise _translate(error) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise Unavailable(f"the Kubernetes API cannot be reached: {error!r}") from None
        sanitized: Json = self._client.sanitize_for_serialization(answer)
        return sanitized


def _translate(error: ApiException) -> AortaError:
    status = int(error.status or 0)
    message = _status_message(error)
    if status == 404:
        return NotFound(message)
    if status == 409:
        return Conflict(message)
    if status == 410:
        return Expired(message)
    if status in (400, 422):
        return Invalid(message)
    if status in (401, 403):
        return Internal(f"the Kubernetes API refused Aorta's credentials: {message}")
    return Unavailable(f"the Kubernetes API failed ({status}): {message}")


def _status_message(error: ApiException) -> str:
    """The `message` of the `kind: Status` answer, else what the exception carries."""
    for text in (error.body, error.reason):
        if not text:
            continue
        try:
            document = json.loads(text)
        except (TypeError, ValueError):
            return str(text)
        if isinstance(document, dict) and document.get("message"):
            return str(document["message"])
    return f"HTTP {error.status}"
