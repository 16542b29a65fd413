"""A stand-in Kubernetes API server for tests: the REST paths Aorta's client uses, in-process.

No kube-apiserver can be installed on the project's machines (docs/test-infrastructure.md), so
the executor and the Triton backend are tested through the official client's whole stack — a
kubeconfig file, HTTP, (de)serialisation, chunked watches — against this aiohttp server:

- pods, services, deployments and persistent volume claims: create (409 `AlreadyExists`), get,
  list (label and field selectors), watch, strategic/merge patch (as a JSON merge), delete (a
  grace period marks the object with a `deletionTimestamp` first, then removes it shortly
  after), pod logs;
- errors are `kind: Status` documents; every change takes the next integer resourceVersion;
- a watch streams one JSON event per line from the resourceVersion asked for, replaying the
  retained history first; `compact()` forgets history so that resuming from an older version is
  answered with a 410 `Expired` ERROR event, as the real server does; `end_watches()` closes
  every open watch (the client must resume);
- nothing runs pods: the test (or a simulated kubelet built on `set_status`/`set_log`) moves
  each pod through Pending → Running → Succeeded/Failed; `hooks` see each new object.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from aorta.testing.kube_schema import check_schema

Json = dict[str, Any]
Hook = Callable[[str, Json], None]

_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[a-z.]+)/v1)/namespaces/(?P<ns>[^/]+)/(?P<plural>[a-z]+)"
    r"(?:/(?P<name>[^/]+)(?:/(?P<sub>log|status))?)?$"
)
_KINDS = {
    "pods": "Pod",
    "services": "Service",
    "deployments": "Deployment",
    "persistentvolumeclaims": "PersistentVolumeClaim",
}
_FIRST_VERSION = 1000
_DELETE_DELAY = 0.05
"""Seconds between a graceful delete's `deletionTimestamp` and the object's removal."""


@dataclass
class _Watcher:
    plural: str
    namespace: str
    labels: str
    fields: str
    queue: asyncio.Queue[Json | None] = field(default_factory=asyncio.Queue)


class KubeApiServer:
    """The server and its objects. Use `async with KubeApiServer() as api:`; `kubeconfig(path)`
    writes a file pointing the client at it.

    `validate` is called with every object a client creates (its answer a 422 `Invalid` when
    it raises ValueError); by default the strict OpenAPI schema check, `check_schema`.
    """

    def __init__(self, validate: Callable[[Json], None] | None = check_schema) -> None:
        self._validate = validate
        self._objects: dict[tuple[str, str, str], Json] = {}
        self._history: list[tuple[int, str, str, Json]] = []
        # A real server's versions never start at 0, which a watch reads as "from now, with a
        # synthetic ADDED event per object": a list must never answer it.
        self._current = _FIRST_VERSION
        self._oldest = _FIRST_VERSION
        self._version = itertools.count(_FIRST_VERSION + 1)
        self._watchers: list[_Watcher] = []
        self._change = asyncio.Event()
        self._logs: dict[tuple[str, str, str], bytes] = {}
        self._runner: web.AppRunner | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self.port = 0
        self.hooks: list[Hook] = []
        self.creates: list[tuple[str, str]] = []
        """(plural, name) of every create request, conflicting ones included."""
        self.deletions: list[tuple[str, str, int]] = []
        """(plural, name, grace seconds) of every delete request."""
        self.watch_requests: list[str] = []
        """The resourceVersion each watch request asked for."""
        self.expired = 0
        """How many watches were answered 410 Expired."""

    async def __aenter__(self) -> KubeApiServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        self.port = listener.getsockname()[1]
        await web.SockSite(self._runner, listener).start()
        return self

    async def __aexit__(self, *_: object) -> None:
        self.end_watches()
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    def kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """Writes a kubeconfig for this server at `path` and returns it."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "stand-in", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "stand-in-token"}}],
            "contexts": [
                {
                    "name": "stand-in",
                    "context": {"cluster": "stand-in", "user": "tester", "namespace": namespace},
                }
            ],
            "current-context": "stand-in",
        }
        path.write_text(json.dumps(config))
        return path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- what tests read and drive -------------------------------------------------------

    def get(self, plural: str, namespace: str, name: str) -> Json | None:
        """A copy of the object, or None."""
        found = self._objects.get((plural, namespace, name))
        return copy.deepcopy(found) if found else None

    def names(self, plural: str, namespace: str) -> list[str]:
        return sorted(n for (p, ns, n) in self._objects if p == plural and ns == namespace)

    def set_status(self, plural: str, namespace: str, name: str, status: Json) -> Json:
        """Replaces the object's status (a MODIFIED event); KeyError when absent."""
        obj = self._objects[(plural, namespace, name)]
        obj["status"] = copy.deepcopy(status)
        self._changed("MODIFIED", plural, obj)
        return copy.deepcopy(obj)

    def set_log(self, namespace: str, pod: str, container: str, text: str) -> None:
        """What `GET .../pods/{pod}/log?container=...` answers."""
        self._logs[(namespace, pod, container)] = text.encode()

    def compact(self) -> None:
        """Forgets the event history: a watch resuming from before now gets 410 Expired."""
        self._history.clear()
        self._oldest = self._current

    async def next_change(self) -> None:
        """Returns after the next change to any object."""
        await self._change.wait()

    def end_watches(self) -> None:
        """Ends every open watch stream, as a server's watch timeout would."""
        for watcher in self._watchers:
            watcher.queue.put_nowait(None)

    # -- HTTP ------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        match = _PATH.match(request.path)
        if match is None or match["plural"] not in _KINDS:
            return _status(404, "NotFound", f"no route for {request.path}")
        plural, ns, name, sub = match["plural"], match["ns"], match["name"], match["sub"]
        query = request.query
        if name is None and request.method == "POST":
            return await self._create(plural, ns, await request.json())
        if name is None and request.method == "GET":
            if query.get("watch", "").lower() in ("1", "true"):
                return await self._watch(request, plural, ns)
            return self._list(plural, ns, query.get("labelSelector", ""), query)
        key = (plural, ns, name or "")
        if key not in self._objects:
            return _status(404, "NotFound", f'{plural} "{name}" not found')
        if sub == "log":
            return self._log(ns, name, query.get("container", ""))
        if request.method == "GET":
            return web.json_response(self._objects[key])
        if request.method == "PATCH":
            obj = self._objects[key]
            _merge(obj, await request.json())
            self._changed("MODIFIED", plural, obj)
            return web.json_response(obj)
        if request.method == "DELETE":
            grace = int(query.get("gracePeriodSeconds", "30"))
            return self._delete(plural, key, grace)
        return _status(405, "MethodNotAllowed", request.method)

    async def _create(self, plural: str, ns: str, body: Json) -> web.Response:
        name = body.get("metadata", {}).get("name", "")
        self.creates.append((plural, name))
        if (plural, ns, name) in self._objects:
            return _status(409, "AlreadyExists", f'{plural} "{name}" already exists')
        if self._validate is not None:
            try:
                self._validate(body)
            except ValueError as error:
                return _status(422, "Invalid", f"{_KINDS[plural]} {name!r} is invalid: {error}")
        obj = copy.deepcopy(body)
        metadata = obj.setdefault("metadata", {})
        metadata.update(
            namespace=ns,
            uid=f"uid-{plural}-{name}-{self._current + 1}",
            creationTimestamp=_now(),
            generation=1,
        )
        obj["status"] = (
            {"phase": "Pending", "conditions": []} if plural == "pods" else obj.get("status", {})
        )
        self._objects[(plural, ns, name)] = obj
        self._changed("ADDED", plural, obj)
        for hook in self.hooks:
            hook(plural, copy.deepcopy(obj))
        return web.json_response(obj, status=201)

    def _list(self, plural: str, ns: str, labels: str, query: Any) -> web.Response:
        items = [
            obj
            for (p, n, _), obj in sorted(self._objects.items())
            if p == plural and n == ns and _selected(obj, labels, query.get("fieldSelector", ""))
        ]
        return web.json_response(
            {
                "kind": f"{_KINDS[plural]}List",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": str(self._current)},
                "items": items,
            }
        )

    async def _watch(self, request: web.Request, plural: str, ns: str) -> web.StreamResponse:
        since_text = request.query.get("resourceVersion", "")
        self.watch_requests.append(since_text)
        watcher = _Watcher(
            plural,
            ns,
            request.query.get("labelSelector", ""),
            request.query.get("fieldSelector", ""),
        )
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        since = int(since_text or 0)
        if since and since < self._oldest:
            gone = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410}
            gone |= {"reason": "Expired", "message": f"too old resource version: {since}"}
            await response.write(_line({"type": "ERROR", "object": gone}))
            self.expired += 1
            return response
        backlog = (
            [("ADDED", obj) for (p, n, _), obj in sorted(self._objects.items()) if p == plural]
            if not since
            else [(kind, obj) for v, p, kind, obj in self._history if v > since and p == plural]
        )
        self._watchers.append(watcher)
        try:
            for kind, obj in backlog:
                await self._send(response, watcher, kind, obj)
            timeout = float(request.query.get("timeoutSeconds", "300"))
            async with asyncio.timeout(timeout):
                while (event := await watcher.queue.get()) is not None:
                    await self._send(response, watcher, event["type"], event["object"])
        except TimeoutError:
            pass  # the watch's own timeout: the client resumes
        finally:
            self._watchers.remove(watcher)
        return response

    async def _send(
        self, response: web.StreamResponse, watcher: _Watcher, kind: str, obj: Json
    ) -> None:
        meta = obj.get("metadata", {})
        if meta.get("namespace") == watcher.namespace and _selected(
            obj, watcher.labels, watcher.fields
        ):
            await response.write(_line({"type": kind, "object": obj}))

    def _log(self, ns: str, pod: str, container: str) -> web.Response:
        status = self._objects[("pods", ns, pod)].get("status", {})
        states = {
            s.get("name"): s.get("state", {})
            for s in status.get("containerStatuses", []) + status.get("initContainerStatuses", [])
        }
        state = states.get(container, {})
        if "running" not in state and "terminated" not in state:
            message = f'container "{container}" in pod "{pod}" is waiting to start'
            return _status(400, "BadRequest", message)
        body = self._logs.get((ns, pod, container), b"")
        return web.Response(body=body, content_type="text/plain")

    def _delete(self, plural: str, key: tuple[str, str, str], grace: int) -> web.Response:
        obj = self._objects[key]
        self.deletions.append((plural, key[2], grace))
        if grace > 0 and plural == "pods":
            if not obj["metadata"].get("deletionTimestamp"):
                obj["metadata"].update(deletionTimestamp=_now(), deletionGracePeriodSeconds=grace)
                self._changed("MODIFIED", plural, obj)
                task = asyncio.create_task(self._remove_later(plural, key))
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)
            return web.json_response(obj)
        self._remove(plural, key)
        return web.json_response(obj)

    async def _remove_later(self, plural: str, key: tuple[str, str, str]) -> None:
        await asyncio.sleep(_DELETE_DELAY)
        if key in self._objects:
            self._remove(plural, key)

    def _remove(self, plural: str, key: tuple[str, str, str]) -> None:
        obj = self._objects.pop(key)
        self._changed("DELETED", plural, obj)

    def _changed(self, kind: str, plural: str, obj: Json) -> None:
        self._current = next(self._version)
        obj["metadata"]["resourceVersion"] = str(self._current)
        change, self._change = self._change, asyncio.Event()
        change.set()
        snapshot = copy.deepcopy(obj)
        self._history.append((self._current, plural, kind, snapshot))
        for watcher in self._watchers:
            if watcher.plural == plural:
                watcher.queue.put_nowait({"type": kind, "object": snapshot})


def _selected(obj: Json, labels: str, fields: str) -> bool:
    """Whether `obj` matches a label selector (`k=v`, `k==v`, `k!=v`, `k`, `!k`, joined by
    commas) and a field selector (`metadata.name=x`, `metadata.namespace=x`)."""
    have = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, labels.split(",")):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if have.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if have.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in have:
                return False
        elif term not in have:
            return False
    for term in filter(None, fields.split(",")):
        path, value = term.split("=", 1)
        section, _, key = path.partition(".")
        if str(obj.get(section, {}).get(key, "")) != value:
            return False
    return True


def _merge(target: Json, patch: Json) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _status(code: int, reason: str, message: str) -> web.Response:
    body: Json = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
    body |= {"message": message, "reason": reason, "code": code}
    return web.json_response(body, status=code)


def _line(event: Json) -> bytes:
    return json.dumps(event).encode() + b"\n"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
