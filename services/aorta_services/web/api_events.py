"""`GET /api/events`: the platform's changes as Server-Sent Events."""

from __future__ import annotations

import asyncio

from aiohttp import web

from aorta_services.web.context import console, token

KEEPALIVE_SECONDS = 15.0
"""A comment line this often keeps proxies from closing a quiet stream."""


async def events(request: web.Request) -> web.StreamResponse:
    """Streams each event the caller may see as `id`, `event` (the CloudEvent type) and `data`
    (the CloudEvent); a `resync` event when the stream fell behind and lost some."""
    parts, caller_token = console(request), token(request)
    caller = await parts.platform.who_am_i(caller_token)
    stream = parts.hub.open(caller, caller_token, request.query.get("job_id") or None)
    try:
        response = web.StreamResponse(
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
        response.content_type = "text/event-stream"
        await response.prepare(request)
        await response.write(b": connected\n\n")
        while True:
            # asyncio.timeout: wait_for may swallow a cancellation on Python 3.11.
            try:
                async with asyncio.timeout(KEEPALIVE_SECONDS):
                    event = await stream.queue.get()
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if event is None:
                break
            if stream.lagged:
                stream.lagged = False
                await response.write(b"event: resync\ndata: {}\n\n")
            if not await parts.hub.visible(stream, event):
                continue
            body = event.to_json().decode()
            await response.write(f"id: {event.id}\nevent: {event.type}\ndata: {body}\n\n".encode())
        await response.write_eof()
        return response
    finally:
        parts.hub.close(stream)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/events", events)
