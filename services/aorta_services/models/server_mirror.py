"""The `triton_servers` collection: the pool's state written out for people and tools to see.

The pool itself lives in the models service's memory; this collection only mirrors it (one
document per server: `id`, `state` starting|held|idle, `job_id`, `grpc_uri`, `http_uri`,
`models` [{name, revision}], `loads`). Writes go through one ordered queue so a document never
moves back to an older state, and a failed write is logged, never raised into the pool: the
pool keeps working when the store is slow or down. The models service empties the collection
when it starts, since its servers did not survive its previous life.
"""

from __future__ import annotations

from typing import Any

from aorta.bus.port import SerialWorker
from aorta.errors import AortaError, NotFound
from aorta.logger import get_logger
from aorta.store import StateStore

COLLECTION = "triton_servers"

_log = get_logger(__name__)


class ServerMirror:
    """Ordered, best-effort writes of server documents."""

    def __init__(self, store: StateStore) -> None:
        self._collection = store.collection(COLLECTION)
        self._worker: SerialWorker[tuple[str, dict[str, Any]]] = SerialWorker(
            self._write, name="aorta.models.triton_servers"
        )

    async def reset(self) -> int:
        """Removes every document (a starting service owns no server yet)."""
        return await self._collection.delete_many({})

    def save(self, document: dict[str, Any]) -> None:
        """Queues `document` (with its `id`) to replace the stored one."""
        self._worker.put(("save", document))

    def remove(self, server_id: str) -> None:
        """Queues the removal of server `server_id`'s document."""
        self._worker.put(("remove", {"id": server_id}))

    async def close(self, grace: float = 5.0) -> None:
        """Stops writing (the write in hand gets `grace` seconds; queued ones are dropped) and
        removes every document, since the pool's servers are stopped by then."""
        await self._worker.stop(grace)
        try:
            await self.reset()
        except AortaError as error:
            _log.warning("triton.records_not_cleared", error=str(error))

    async def _write(self, item: tuple[str, dict[str, Any]]) -> None:
        action, document = item
        server_id = document["id"]
        try:
            if action == "remove":
                await self._collection.delete(server_id)
                return
            changes = {key: value for key, value in document.items() if key != "id"}
            try:
                await self._collection.update(server_id, changes)
            except NotFound:
                await self._collection.insert(document)
        except NotFound:
            return
        except AortaError as error:
            _log.warning("triton.record_lost", server_id=server_id, error=str(error))
