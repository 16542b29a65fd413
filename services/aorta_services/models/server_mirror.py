"""The `triton_servers` collection: every replica's Triton servers, as the store knows them.

One document per server: `id`, `owner` (the models replica that started it and operates it),
`state` starting|held|idle, `job_id`, `grpc_uri`, `http_uri`, `models` [{name, revision}],
`gpus`, `loads`. A replica writes only its own servers' documents; writes go through one ordered
queue so a document never moves back to an older state, and a failed write is logged, never
raised into the pool: the pool keeps working when the store is slow or down. `flush` waits until
what was queued is written (an acquire does, before it lets another replica look). Any replica
reads every document: an acquire asked again of another replica answers with the server already
recorded for the job, and the documents of a replica whose heartbeat expired are reaped
(`pool_cluster`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aorta.bus.port import SerialWorker
from aorta.errors import AortaError, NotFound
from aorta.logger import get_logger
from aorta.store import Document, StateStore

COLLECTION = "triton_servers"

_log = get_logger(__name__)


@dataclass
class _Write:
    """`save` (replace), `remove` or `flush` (resolve `done` once everything before it ran)."""

    action: str
    document: dict[str, Any] = field(default_factory=dict)
    done: asyncio.Future[None] | None = None


class ServerMirror:
    """Ordered, best-effort writes of this replica's server documents, and reads of all."""

    def __init__(self, store: StateStore, owner: str = "") -> None:
        self._collection = store.collection(COLLECTION)
        self.owner = owner
        self._worker: SerialWorker[_Write] = SerialWorker(
            self._write, name="aorta.models.triton_servers"
        )

    async def reap(self, alive: set[str]) -> list[str]:
        """Removes the documents of replicas not in `alive`; the ids of their servers."""
        dead = await self._collection.find({"owner": {"$nin": sorted(alive)}})
        ids = [document["id"] for document in dead]
        if ids:
            await self._collection.delete_many({"id": {"$in": ids}})
        return ids

    async def server_ids(self, owners: set[str]) -> set[str]:
        """The ids of the servers of the replicas `owners`."""
        found = await self._collection.find({"owner": {"$in": sorted(owners)}})
        return {document["id"] for document in found}

    async def holding(self, job: str) -> list[Document]:
        """Every replica's servers that job `job` holds."""
        return await self._collection.find({"job_id": job, "state": "held"})

    async def using(self, name: str) -> list[Document]:
        """Every replica's held servers that have model `name` loaded."""
        held = await self._collection.find({"state": "held"})
        return [d for d in held if any(m["name"] == name for m in d.get("models", []))]

    def save(self, document: dict[str, Any]) -> None:
        """Queues `document` (with its `id`) to replace the stored one, owned by this replica."""
        self._worker.put(_Write("save", {**document, "owner": self.owner}))

    def remove(self, server_id: str) -> None:
        """Queues the removal of server `server_id`'s document."""
        self._worker.put(_Write("remove", {"id": server_id}))

    async def flush(self) -> None:
        """Returns once every write queued before it was made (or given up)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._worker.put(_Write("flush", done=done))
        await done

    async def close(self, grace: float = 5.0) -> None:
        """Stops writing (the write in hand gets `grace` seconds; queued ones are dropped) and
        removes this replica's documents, since its servers are stopped by then."""
        await self._worker.stop(grace)
        try:
            await self._collection.delete_many({"owner": self.owner})
        except AortaError as error:
            _log.warning("triton.records_not_cleared", error=str(error))

    async def _write(self, item: _Write) -> None:
        if item.done is not None:
            if not item.done.done():
                item.done.set_result(None)
            return
        document = item.document
        server_id = document["id"]
        try:
            if item.action == "remove":
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
