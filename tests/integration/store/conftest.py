"""Fixtures for the state store contract suite: a fresh store per test, once per adapter.

Adapters: SQLite on a real file, MongoDB on mongomock-motor, the MongoDB adapter with its real
driver over TCP against the wire stand-in (`aorta.testing.mongo_wire`), and a real MongoDB server
only when `AORTA_TEST_MONGODB_URI` is set (each test then gets its own database, dropped
afterwards).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mongomock_motor import AsyncMongoMockClient

from aorta.store import StateStore
from aorta.store.mongo import MongoStateStore
from aorta.store.sqlite import SqliteStateStore
from aorta.testing.mongo_wire import MongoWireServer

MONGODB_URI = os.environ.get("AORTA_TEST_MONGODB_URI")
ADAPTERS = ["sqlite", "mongomock", "mongo-wire", *(["mongodb"] if MONGODB_URI else [])]


@pytest.fixture(params=ADAPTERS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StateStore]:
    """An empty store; closed (and for a real server, its database dropped) afterwards."""
    if request.param == "sqlite":
        sqlite = await SqliteStateStore.open(tmp_path / "state.db")
        yield sqlite
        await sqlite.close()
    elif request.param == "mongomock":
        mock = MongoStateStore(AsyncMongoMockClient(), "aorta_test")
        yield mock
        await mock.close()
    elif request.param == "mongo-wire":
        server = MongoWireServer()
        await server.start()
        wired = MongoStateStore.connect(server.url, "aorta_test")
        try:
            yield wired
        finally:
            await wired.close()
            await server.stop()
    else:
        from motor.motor_asyncio import AsyncIOMotorClient

        client: AsyncIOMotorClient[dict[str, object]] = AsyncIOMotorClient(MONGODB_URI)
        database = f"aorta_test_{uuid.uuid4().hex[:16]}"
        real = MongoStateStore(client, database)
        try:
            yield real
        finally:
            await real.close()
            await client.drop_database(database)
            client.close()
