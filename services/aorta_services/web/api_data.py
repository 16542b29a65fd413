"""Payloads (listing and download), models and node utilization."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from aiohttp import web

from aorta.payload_names import checksums
from aorta.timestamps import utcnow
from aorta_services.web import wire
from aorta_services.web.context import console, token
from aorta_services.web.platform_client import checked
from aorta_services.web.problems import invalid, not_found
from aorta_services.web.utilization import processes_seen_by

DEFAULT_MINUTES = 10
MAX_MINUTES = 60


async def get_payload(request: web.Request) -> web.Response:
    payload_id = request.match_info["payload_id"]
    answers = await console(request).platform.payload_details(payload_id, token(request))
    return web.json_response(wire.payload(answers, payload_id))


def content_disposition(name: str) -> str:
    """`attachment` with the file's base name, plain where it is safe ASCII and RFC 6266's
    `filename*` for the rest."""
    base = name.rstrip("/").rsplit("/", 1)[-1] or "download"
    plain = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in base)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(base, safe='')}"


async def download(request: web.Request) -> web.StreamResponse:
    """One file's bytes as the platform streams them; the headers wait for its first message,
    so a refusal or an unknown file is still a JSON error."""
    payload_id = request.match_info["payload_id"]
    name = request.query.get("name", "")
    if not name:
        raise invalid("name the file to download, as the payload lists it: ?name=/input/scan.dcm")
    chunks = console(request).platform.download(payload_id, name, token(request))
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        raise not_found(f"file {name} was not found in payload {payload_id}") from None
    try:
        checked(first, f"downloading {name} from payload {payload_id}")
        headers = {
            "Content-Disposition": content_disposition(first.details.name or name),
            "Content-Length": str(first.details.size),
            "Cache-Control": "no-store",
        }
        digest = checksums(first.header.messages).get(first.details.name or name)
        if digest:
            headers["X-Checksum-Sha256"] = digest
        response = web.StreamResponse(headers=headers)
        response.content_type = "application/octet-stream"
        await response.prepare(request)
        await response.write(first.data)
        async for chunk in chunks:
            await response.write(chunk.data)
        await response.write_eof()
        return response
    finally:
        await chunks.aclose()


async def list_models(request: web.Request) -> web.Response:
    found = await console(request).platform.models_list(token(request))
    items = sorted((wire.model(m) for m in found), key=lambda m: m["name"].lower())
    return web.json_response({"items": items})


async def utilization(request: web.Request) -> web.Response:
    """The latest sample of each GPU, and those the console kept over the last `minutes`."""
    given = request.query.get("minutes", str(DEFAULT_MINUTES))
    if not given.isdigit() or not 1 <= int(given) <= MAX_MINUTES:
        raise invalid(f"minutes {given!r} must be a whole number from 1 to {MAX_MINUTES}")
    parts, caller_token = console(request), token(request)
    gpus = await parts.platform.utilization(caller_token)
    now = utcnow()
    parts.history.add((wire.gpu_sample(gpu, processes=False) for gpu in gpus), now)
    current = [wire.gpu_sample(gpu, processes=True) for gpu in gpus]
    caller = await parts.platform.who_am_i(caller_token)
    if not caller.sees_every_job:
        jobs = {p["job_id"] for sample in current for p in sample["processes"] if p["job_id"]}
        owners = {job: await parts.hub.job_owner(job, caller_token) for job in jobs}
        current = processes_seen_by(current, owners, caller.subject)
    return web.json_response(
        {"current": current, "history": parts.history.since(now - timedelta(minutes=int(given)))}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/payloads/{payload_id}", get_payload)
    app.router.add_get("/api/payloads/{payload_id}/download", download)
    app.router.add_get("/api/models", list_models)
    app.router.add_get("/api/utilization", utilization)
