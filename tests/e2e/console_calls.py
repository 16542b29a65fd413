"""Calls to the console's JSON API as the console's tests make them: a cookie-keeping client,
bearer and CSRF headers, the upload form of a page, and the event stream read until an event."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from tests.e2e.console_platform import Console

CSRF = {"X-Aorta-Console": "1"}
EVENT_WAIT = 120.0
"""Seconds a test waits for the platform to report a change (a job to finish)."""


@asynccontextmanager
async def following(
    session: aiohttp.ClientSession, headers: dict[str, str], done: Any, query: str = ""
) -> AsyncIterator[asyncio.Task[list[dict[str, Any]]]]:
    """An open event stream, read in a task until `done(event)`; the task is cancelled on the
    way out if the test ends first."""
    opened = asyncio.Event()
    task = asyncio.create_task(events_until(session, headers, done, query, opened))
    try:
        await opened.wait()
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@asynccontextmanager
async def client(console: Console) -> AsyncIterator[aiohttp.ClientSession]:
    # An unsafe jar keeps cookies of an IP address (the console listens on 127.0.0.1).
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(console.base, cookie_jar=jar) as session:
        yield session


def bearer(console: Console, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {console.tokens[who]}"}


async def call(
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    **options: Any,
) -> tuple[int, Any]:
    """Status and JSON body of one request."""
    async with session.request(method, path, headers=headers or {}, **options) as answer:
        text = await answer.text()
        return answer.status, json.loads(text) if text else None


def error_code(body: Any) -> str:
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"]
    return str(body["error"]["code"])


def form(name: str, files: dict[str, bytes], **fields: str) -> aiohttp.FormData:
    """The form a page sends: fields first, then the files."""
    data = aiohttp.FormData(default_to_multipart=True)
    data.add_field("name", name)
    for key, value in fields.items():
        data.add_field(key, value)
    for file_name, content in files.items():
        data.add_field("file", content, filename=file_name)
    return data


async def run(
    session: aiohttp.ClientSession,
    console: Console,
    who: str,
    pipeline: str,
    name: str,
    files: dict[str, bytes],
    **fields: str,
) -> dict[str, Any]:
    status, body = await call(
        session,
        "POST",
        f"/api/pipelines/{pipeline}/jobs",
        {**bearer(console, who), **CSRF},
        data=form(name, files, **fields),
    )
    assert status == 201, body
    return dict(body)


async def events_until(
    session: aiohttp.ClientSession,
    headers: dict[str, str],
    done: Any,
    query: str = "",
    opened: asyncio.Event | None = None,
) -> list[dict[str, Any]]:
    """The CloudEvents of `/api/events` until `done(event)` holds for one."""
    seen: list[dict[str, Any]] = []
    async with session.get(f"/api/events{query}", headers=headers) as stream:
        assert stream.status == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        async for raw in stream.content:
            line = raw.decode().rstrip("\n")
            if line == ": connected" and opened is not None:
                opened.set()
            if line.startswith("data: "):
                event = json.loads(line.removeprefix("data: "))
                seen.append(event)
                if done(event):
                    return seen
    raise AssertionError(f"the event stream ended after {seen}")


def stopped_named(name: str) -> Any:
    return lambda e: e["type"] == "org.aorta.job.stopped" and e["data"].get("name") == name


async def until(check: Any) -> Any:
    """Asks `check()` again until it answers something true (the platform has no event for
    it), within `EVENT_WAIT` seconds."""
    async with asyncio.timeout(EVENT_WAIT):
        # No event tells that a wait reason was recorded, so the condition is asked again.
        while not (found := await check()):  # noqa: ASYNC110
            await asyncio.sleep(0.2)
    return found
