"""A live local view of the objects of one kind that match a label selector.

The informer pattern, small: list once, then watch from the list's resourceVersion, applying
each event to the view; when the server ends a watch (it does after `lasting` seconds) resume
from the last resourceVersion seen; when that version has expired (410 Gone) list again and
replace the view; when the API cannot be reached retry with a capped back-off. Waiters never
poll: they read the view and sleep until its version moves (`changed_since`).

The view can lag the API by the time an event takes to arrive, so callers that find an object
missing confirm with a direct read before concluding it is gone.
"""

from __future__ import annotations

import asyncio

from aorta.errors import AortaError
from aorta.kubernetes.api import Expired, Json, Kind, KubeApi
from aorta.logger import get_logger
from aorta.tasks import cancel_and_wait

_log = get_logger(__name__)

_FIRST_RETRY = 0.2
_MAX_RETRY = 10.0


class ObjectWatch:
    """The view of `kind` objects in `namespace` matching the label `selector` (and the field
    selector `fields`), kept current by one task.

    `start` launches the task; `synced` returns once the first list is in; `close` stops the
    task (idempotent). Objects are keyed by name and are the API's JSON (camelCase keys).
    """

    def __init__(
        self,
        api: KubeApi,
        kind: Kind,
        namespace: str,
        selector: str,
        *,
        lasting: int,
        fields: str = "",
    ) -> None:
        self._api = api
        self._fields = fields
        self._kind = kind
        self._namespace = namespace
        self._selector = selector
        self._lasting = lasting
        self._objects: dict[str, Json] = {}
        self._version = 0
        self._changed = asyncio.Event()
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.relists = 0
        """How many times the view was rebuilt from a list (the first one included)."""

    @property
    def version(self) -> int:
        """Grows by one for every change applied to the view."""
        return self._version

    def start(self) -> None:
        """Starts the watch task unless it runs already."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"watch-{self._kind.model}")

    async def synced(self) -> None:
        """Returns once the view holds a complete first list (starting the task if needed)."""
        self.start()
        await self._synced.wait()

    def objects(self) -> list[Json]:
        """A snapshot of the view."""
        return list(self._objects.values())

    def get(self, name: str) -> Json | None:
        """The object of that name in the view, or None."""
        return self._objects.get(name)

    async def changed_since(self, version: int) -> None:
        """Returns as soon as `version` is older than the view's (at once when it already is)."""
        while self._version <= version:
            await self._changed.wait()

    async def close(self) -> None:
        """Stops the watch task and waits for it."""
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _run(self) -> None:
        delay = _FIRST_RETRY
        resource_version = ""
        while True:
            try:
                if not resource_version:
                    resource_version = await self._relist()
                async for event in self._api.watch(
                    self._kind,
                    self._namespace,
                    self._selector,
                    resource_version,
                    lasting=self._lasting,
                    fields=self._fields,
                ):
                    resource_version = self._apply(event.type, event.object) or resource_version
                    delay = _FIRST_RETRY
            except Expired:
                _log.info("watch expired, listing again", kind=self._kind.model)
                resource_version = ""
            except AortaError as error:
                _log.warning(
                    "watch failed, retrying", kind=self._kind.model, error=str(error), delay=delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_RETRY)
            except Exception:
                # Waiters depend on this task: an unexpected answer must not end it silently.
                _log.exception("watch broke unexpectedly, retrying", kind=self._kind.model)
                resource_version = ""
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_RETRY)

    async def _relist(self) -> str:
        listing = await self._api.list(
            self._kind, self._namespace, self._selector, fields=self._fields
        )
        self._objects = {_name(item): item for item in listing.items}
        self.relists += 1
        self._bump()
        self._synced.set()
        return listing.resource_version

    def _apply(self, kind: str, obj: Json) -> str:
        """Applies one event; returns the resourceVersion to resume from ('' if none)."""
        version = str((obj.get("metadata") or {}).get("resourceVersion", ""))
        if kind in ("ADDED", "MODIFIED"):
            self._objects[_name(obj)] = obj
        elif kind == "DELETED":
            self._objects.pop(_name(obj), None)
        else:
            return version  # BOOKMARK: only a newer version to resume from
        self._bump()
        return version

    def _bump(self) -> None:
        # Every waiter sleeps on the current event; setting it wakes them all, and the next
        # change gets a fresh one.
        self._version += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()


def _name(obj: Json) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))
