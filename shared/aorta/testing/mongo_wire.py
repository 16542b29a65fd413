"""A MongoDB stand-in on the wire: a small server speaking MongoDB's wire protocol over TCP,
backed by mongomock, so the real driver (pymongo under motor) and the production adapter
(`aorta.store.mongo`) talk to it exactly as to a MongoDB server. No MongoDB server can be
installed on these machines; this is what the container deployment test's services use.

It answers the handshake (`OP_QUERY` and `OP_MSG` `hello`/`isMaster`) as a standalone server
without sessions, and the commands the adapter sends: `find` and `getMore` (with cursors, so
small batches work), `aggregate` (`count_documents`), `insert`, `findAndModify`, `delete`,
`createIndexes`, `listIndexes`, `dropDatabase`, `killCursors`, `ping`, `buildInfo`,
`endSessions`. Anything else is answered as MongoDB answers an unknown command (code 59).
Commands run one at a time on the event loop, so each is atomic, as on a server.

`python -m aorta.testing.mongo_wire --port N` runs one in the foreground (loopback only).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import bson
import mongomock
from bson.codec_options import CodecOptions
from bson.son import SON
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError, OperationFailure

from aorta.logger import get_logger

Json = dict[str, Any]

_OP_REPLY = 1
_OP_QUERY = 2004
_OP_MSG = 2013
_HEADER = struct.Struct("<iiii")
_MAX_MESSAGE = 48_000_000
# Commands keep their keys' order (the command's name first, a sort's fields in order).
_CODEC: CodecOptions[Any] = CodecOptions(document_class=SON)
_DEFAULT_BATCH = 101
_UNKNOWN_COMMAND = 59

_log = get_logger(__name__)


@dataclass
class _Cursor:
    namespace: str
    documents: Iterator[Json]


@dataclass
class MongoWireServer:
    """The stand-in: `await start()` listens on `host:port` (port 0: a free one, read back from
    `port`), `await stop()` closes every connection. `url` is the MongoDB URL to give the
    driver."""

    host: str = "127.0.0.1"
    port: int = 0
    _client: mongomock.MongoClient[Json] = field(default_factory=mongomock.MongoClient)
    _server: asyncio.Server | None = field(default=None, init=False)
    _cursors: dict[int, _Cursor] = field(default_factory=dict, init=False)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1), init=False)
    _connections: dict[asyncio.StreamWriter, asyncio.Task[None]] = field(
        default_factory=dict, init=False
    )

    @property
    def url(self) -> str:
        """The MongoDB URL of this server (direct connection, no replica set)."""
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    async def start(self) -> None:
        """Listens; returns once connections are accepted."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stops listening and closes the open connections."""
        if self._server is None:
            return
        self._server.close()
        handlers = list(self._connections.values())
        for writer in list(self._connections):
            writer.close()
        # Each handler ends when its connection does (it reads the end of the stream).
        await asyncio.gather(*handlers, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[writer] = task
        try:
            while True:
                header = await reader.readexactly(_HEADER.size)
                length, request_id, _, opcode = _HEADER.unpack(header)
                if not _HEADER.size < length <= _MAX_MESSAGE:
                    return
                body = await reader.readexactly(length - _HEADER.size)
                writer.write(self._answer(request_id, opcode, body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            self._connections.pop(writer, None)
            writer.close()

    def _answer(self, request_id: int, opcode: int, body: bytes) -> bytes:
        if opcode == _OP_QUERY:
            command = _query_command(body)
            answer = bson.encode(self._run(command, "admin"))
            payload = struct.pack("<iqii", 0, 0, 0, 1) + answer
            return _message(request_id, _OP_REPLY, payload)
        if opcode != _OP_MSG:
            raise ConnectionError(f"unsupported wire opcode {opcode}")
        command = _msg_command(body)
        reply = self._run(command, str(command.get("$db", "admin")))
        return _message(request_id, _OP_MSG, struct.pack("<IB", 0, 0) + bson.encode(reply))

    def _run(self, command: Json, database: str) -> Json:
        name = next(iter(command))
        handler = self._handlers().get(name.lower())
        if handler is None:
            return _failure(f"no such command: '{name}'", _UNKNOWN_COMMAND)
        try:
            return {**handler(command, self._client[database]), "ok": 1.0}
        except DuplicateKeyError as error:
            return {**(error.details or {}), **_failure(str(error), 11000)}
        except OperationFailure as error:
            return _failure(str(error), error.code or 2)
        except (mongomock.OperationFailure, ValueError, TypeError, KeyError) as error:
            return _failure(f"{type(error).__name__}: {error}", 2)

    def _handlers(self) -> dict[str, Callable[[Json, Any], Json]]:
        return {
            "hello": _hello,
            "ismaster": _hello,
            "ping": lambda _c, _d: {},
            "buildinfo": lambda _c, _d: {"version": "7.0.0", "versionArray": [7, 0, 0, 0]},
            "endsessions": lambda _c, _d: {},
            "dropdatabase": self._drop_database,
            "insert": _insert,
            "find": self._find,
            "aggregate": self._aggregate,
            "getmore": self._get_more,
            "killcursors": self._kill_cursors,
            "findandmodify": _find_and_modify,
            "delete": _delete,
            "createindexes": _create_indexes,
            "listindexes": self._list_indexes,
        }

    def _drop_database(self, _command: Json, database: Any) -> Json:
        self._client.drop_database(database.name)
        return {"dropped": database.name}

    def _find(self, command: Json, database: Any) -> Json:
        collection = database[command["find"]]
        sort = list((command.get("sort") or {}).items()) or None
        found = collection.find(
            command.get("filter") or {},
            command.get("projection"),
            sort=sort,
            skip=int(command.get("skip", 0)),
            limit=abs(int(command.get("limit", 0))),
        )
        return self._first_batch(command, collection.full_name, iter(found))

    def _aggregate(self, command: Json, database: Any) -> Json:
        collection = database[command["aggregate"]]
        found = collection.aggregate(list(command["pipeline"]))
        return self._first_batch(command, collection.full_name, iter(found))

    def _first_batch(self, command: Json, namespace: str, documents: Iterator[Json]) -> Json:
        cursor = command.get("cursor") or {}
        size = int(command.get("batchSize") or cursor.get("batchSize") or _DEFAULT_BATCH)
        batch = list(itertools.islice(documents, size))
        cursor_id = 0
        if len(batch) == size and not command.get("singleBatch"):
            cursor_id = next(self._ids)
            self._cursors[cursor_id] = _Cursor(namespace, documents)
        return {"cursor": {"id": bson.Int64(cursor_id), "ns": namespace, "firstBatch": batch}}

    def _get_more(self, command: Json, _database: Any) -> Json:
        cursor_id = int(command["getMore"])
        cursor = self._cursors.get(cursor_id)
        if cursor is None:
            raise OperationFailure(f"cursor id {cursor_id} not found", 43)
        size = int(command.get("batchSize") or _DEFAULT_BATCH)
        batch = list(itertools.islice(cursor.documents, size))
        if len(batch) < size:
            del self._cursors[cursor_id]
            cursor_id = 0
        return {"cursor": {"id": bson.Int64(cursor_id), "ns": cursor.namespace, "nextBatch": batch}}

    def _kill_cursors(self, command: Json, _database: Any) -> Json:
        killed = [int(i) for i in command.get("cursors", []) if self._cursors.pop(int(i), None)]
        return {"cursorsKilled": [bson.Int64(i) for i in killed]}

    def _list_indexes(self, command: Json, database: Any) -> Json:
        collection = database[command["listIndexes"]]
        indexes = [
            {**{k: v for k, v in info.items() if k != "key"}, "key": SON(info["key"]), "name": name}
            for name, info in collection.index_information().items()
        ]
        return self._first_batch(command, collection.full_name, iter(indexes))


def _hello(_command: Json, _database: Any) -> Json:
    # A standalone server without sessions, so the driver sends plain commands.
    return {
        "isWritablePrimary": True,
        "ismaster": True,
        "helloOk": True,
        "maxBsonObjectSize": 16 * 1024 * 1024,
        "maxMessageSizeBytes": _MAX_MESSAGE,
        "maxWriteBatchSize": 100_000,
        "minWireVersion": 0,
        "maxWireVersion": 17,
        "readOnly": False,
    }


def _insert(command: Json, database: Any) -> Json:
    collection = database[command["insert"]]
    written = 0
    for index, document in enumerate(command["documents"]):
        try:
            collection.insert_one(document)
        except DuplicateKeyError as error:
            return {"n": written, "writeErrors": [_write_error(index, error, collection, document)]}
        written += 1
    return {"n": written}


def _write_error(index: int, error: DuplicateKeyError, collection: Any, document: Json) -> Json:
    """MongoDB's write error for a duplicate key, naming the unique index's key pattern."""
    pattern: Json = {"_id": 1}
    if collection.find_one({"_id": document.get("_id")}) is None:
        for info in collection.index_information().values():
            keys = [key for key, _ in info["key"]]
            if info.get("unique") and collection.find_one({k: _at(document, k) for k in keys}):
                pattern = SON((key, 1) for key in keys)
                break
    return {"index": index, "code": 11000, "errmsg": str(error), "keyPattern": pattern}


def _at(document: Json, path: str) -> Any:
    """The value at a dotted `path` of `document` (None where it is missing)."""
    value: Any = document
    for segment in path.split("."):
        value = value.get(segment) if isinstance(value, dict) else None
    return value


def _overlap(changed: str, key: str) -> bool:
    """Whether setting the path `changed` changes the indexed path `key`."""
    return changed == key or key.startswith(f"{changed}.") or changed.startswith(f"{key}.")


def _find_and_modify(command: Json, database: Any) -> Json:
    collection = database[command["findAndModify"]]
    if command.get("remove"):
        value = collection.find_one_and_delete(command.get("query") or {})
    else:
        try:
            value = _update_one(command, collection)
        except DuplicateKeyError as error:
            raise DuplicateKeyError(
                str(error), 11000, {"keyPattern": _updated_index(command, collection)}
            ) from error
    return {"value": value, "lastErrorObject": {"n": int(value is not None)}}


def _update_one(command: Json, collection: Any) -> Json | None:
    found: Json | None = collection.find_one_and_update(
        command.get("query") or {},
        command["update"],
        projection=command.get("fields"),
        sort=list((command.get("sort") or {}).items()) or None,
        upsert=bool(command.get("upsert")),
        return_document=ReturnDocument.AFTER if command.get("new") else ReturnDocument.BEFORE,
    )
    return found


def _updated_index(command: Json, collection: Any) -> Json:
    """The key pattern of the unique index an update's `$set` clashed on (an update never
    changes `_id`)."""
    changed = set((command.get("update") or {}).get("$set") or {})
    for info in collection.index_information().values():
        keys = [key for key, _ in info["key"]]
        if info.get("unique") and any(_overlap(path, key) for path in changed for key in keys):
            return SON((key, 1) for key in keys)
    return {"_id": 1}


def _delete(command: Json, database: Any) -> Json:
    collection = database[command["delete"]]
    removed = 0
    for order in command["deletes"]:
        if int(order.get("limit", 0)) == 1:
            removed += collection.delete_one(order["q"]).deleted_count
        else:
            removed += collection.delete_many(order["q"]).deleted_count
    return {"n": removed}


def _create_indexes(command: Json, database: Any) -> Json:
    collection = database[command["createIndexes"]]
    for index in command["indexes"]:
        options = {k: v for k, v in index.items() if k not in {"key", "v"}}
        collection.create_index(list(index["key"].items()), **options)
    return {"numIndexesAfter": len(collection.index_information())}


def _failure(message: str, code: int) -> Json:
    return {"ok": 0.0, "errmsg": message, "code": code}


def _message(response_to: int, opcode: int, payload: bytes) -> bytes:
    return _HEADER.pack(_HEADER.size + len(payload), 0, response_to, opcode) + payload


def _query_command(body: bytes) -> Json:
    """The command of a legacy `OP_QUERY` (the driver's first handshake)."""
    end = body.index(b"\0", 4)
    start = end + 1 + 8  # the collection's name, then numberToSkip and numberToReturn
    length = struct.unpack_from("<i", body, start)[0]
    query: Json = bson.decode(body[start : start + length], codec_options=_CODEC)
    return query.get("$query", query) if "$query" in query else query


def _msg_command(body: bytes) -> Json:
    """The command of an `OP_MSG`: its body section, with each document sequence added under
    its identifier (how the driver sends `insert`'s documents)."""
    flags = struct.unpack_from("<I", body)[0]
    end = len(body) - (4 if flags & 1 else 0)
    offset = 4
    command: Json = SON()
    while offset < end:
        kind = body[offset]
        offset += 1
        length = struct.unpack_from("<i", body, offset)[0]
        if kind == 0:
            command = SON(
                list(bson.decode(body[offset : offset + length], codec_options=_CODEC).items())
                + list(command.items())
            )
        else:
            section = body[offset + 4 : offset + length]
            name_end = section.index(b"\0")
            documents = list(bson.decode_all(section[name_end + 1 :], codec_options=_CODEC))
            command[section[:name_end].decode()] = documents
        offset += length
    return command


async def _serve_forever(port: int) -> None:
    server = MongoWireServer(port=port)
    await server.start()
    _log.info("MongoDB wire stand-in listening", url=server.url)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


def main() -> None:
    """`python -m aorta.testing.mongo_wire --port N`: serves on loopback until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=27017)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(parser.parse_args().port))


if __name__ == "__main__":
    main()
