"""Jobs: the paged list, one job, its timeline and logs, start, cancel and delete."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from aorta.api import aorta_jobs_pb2, common_pb2, jobs_pb2
from aorta.timestamps import from_iso, to_clara_seconds, utcnow
from aorta_services.web import wire
from aorta_services.web.context import console, token
from aorta_services.web.platform_client import Platform
from aorta_services.web.problems import ApiError, invalid

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
FOLLOW_INTERVAL = 1.0
"""Seconds between reads of a followed log (the platform sends the whole log on each read)."""
_REASONS_AT_ONCE = 8


def _enum_values(request: web.Request, name: str, enum: Any, prefix: str) -> list[int]:
    values = []
    for given in request.query.getall(name, []):
        try:
            values.append(int(enum.Value(prefix + given.upper())))
        except ValueError:
            known = ", ".join(
                v.name.removeprefix(prefix) for v in enum.DESCRIPTOR.values if v.number
            )
            raise invalid(f"{name} {given!r} is not one of {known}") from None
    return values


def _time(request: web.Request, name: str) -> int | None:
    given = request.query.get(name)
    if not given:
        return None
    try:
        return to_clara_seconds(from_iso(given))
    except ValueError:
        raise invalid(
            f"{name} {given!r} is not an RFC 3339 time such as 2026-01-31T12:00:00Z"
        ) from None


def _limit(request: web.Request) -> int:
    given = request.query.get("limit", str(DEFAULT_LIMIT))
    if not given.isdigit() or not 1 <= int(given) <= MAX_LIMIT:
        raise invalid(f"limit {given!r} must be a whole number from 1 to {MAX_LIMIT}")
    return int(given)


def page_request(request: web.Request) -> aorta_jobs_pb2.JobsPageRequest:
    """The platform's `aorta.v1.Jobs/Page` request the query asks for; the console's cursor
    is the platform's own."""
    page = aorta_jobs_pb2.JobsPageRequest(
        has_state=_enum_values(request, "state", jobs_pb2.JobState, "JOB_STATE_"),  # type: ignore[arg-type]
        has_status=_enum_values(request, "status", jobs_pb2.JobStatus, "JOB_STATUS_"),  # type: ignore[arg-type]
        pipeline_id=[
            common_pb2.Identifier(value=v) for v in request.query.getall("pipeline_id", [])
        ],
        page_size=_limit(request),
        cursor=request.query.get("cursor", ""),
    )
    bounds = {"created_after": page.created_after, "created_before": page.created_before}
    for name, bound in bounds.items():
        bound.value = _time(request, name) or 0
    return page


async def list_jobs(request: web.Request) -> web.Response:
    """One page of jobs, newest first, as the platform pages them (`aorta.v1.Jobs/Page`):
    one call that reads one page of the store, however many jobs there are."""
    caller_token = token(request)
    answer = await console(request).platform.jobs_page(page_request(request), caller_token)
    now = utcnow()
    documents = [wire.job_summary(details, now) for details in answer.jobs]
    await _add_waiting_reasons(request, documents, caller_token)
    return web.json_response({"items": documents, "next_cursor": answer.next_cursor or None})


async def _add_waiting_reasons(
    request: web.Request, documents: list[dict[str, Any]], caller_token: str | None
) -> None:
    """Asks the platform why each PENDING job of the page waits (a few calls at once): the
    list's entries do not say."""
    platform = console(request).platform
    limit = asyncio.Semaphore(_REASONS_AT_ONCE)

    async def reason(document: dict[str, Any]) -> None:
        async with limit:
            try:
                status, _ = await platform.job_status(document["job_id"], caller_token)
            except ApiError:
                return  # gone meanwhile: the list still shows what it was
        document["waiting_reason"] = wire.waiting_reasons(status.messages)[0]

    await asyncio.gather(*(reason(d) for d in documents if d["state"] == "PENDING"))


async def get_job(request: web.Request) -> web.Response:
    status, _ = await console(request).platform.job_status(
        request.match_info["job_id"], token(request)
    )
    return web.json_response(wire.job(status, utcnow()))


async def _json_object(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise invalid("the request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    return body


def string_map(value: Any, what: str) -> dict[str, str]:
    """`value` as a {name: text} map; `ApiError` 400 naming `what` otherwise."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise invalid(f'{what} must be an object of strings, such as {{"name": "value"}}')
    return dict(value)


async def start_job(request: web.Request) -> web.Response:
    job_id = request.match_info["job_id"]
    body = await _json_object(request)
    variables = string_map(body.get("variables"), "variables")
    answer = await console(request).platform.start_job(job_id, variables, token(request))
    return web.json_response(wire.job_state(job_id, answer.state, answer.status, answer.priority))


async def cancel_job(request: web.Request) -> web.Response:
    job_id = request.match_info["job_id"]
    body = await _json_object(request)
    reason = body.get("reason", "")
    if not isinstance(reason, str):
        raise invalid("reason must be a string")
    answer = await console(request).platform.cancel_job(job_id, reason, token(request))
    return web.json_response(wire.job_state(job_id, answer.job_state, answer.job_status))


async def delete_job(request: web.Request) -> web.Response:
    answer = await console(request).platform.delete_job(
        request.match_info["job_id"], token(request)
    )
    return web.json_response(
        {
            "job_id": answer.job_id.value,
            "payload_id": answer.payload_id.value,
            "logs_removed": answer.logs_removed,
        }
    )


async def timeline(request: web.Request) -> web.Response:
    job_id = request.match_info["job_id"]
    answer = await console(request).platform.timeline(job_id, token(request))
    return web.json_response(wire.timeline(answer, job_id))


async def operator_log(request: web.Request) -> web.StreamResponse:
    """The log as text; with `follow=true`, new lines as they come until the job stops."""
    job_id, operator = request.match_info["job_id"], request.match_info["operator"]
    platform, caller_token = console(request).platform, token(request)
    lines = await platform.read_logs(job_id, operator, caller_token)
    if request.query.get("follow", "false").lower() not in ("1", "true", "yes"):
        text = "".join(line + "\n" for line in lines)
        return web.Response(text=text, content_type="text/plain", charset="utf-8")
    response = web.StreamResponse(headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.content_type = "text/plain"
    response.charset = "utf-8"
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        await _follow(response, platform, job_id, operator, lines, caller_token)
    except ApiError as error:
        # The status line is sent: say why the log ends in the log itself.
        await response.write(f"[console] the log stops here: {error.message}\n".encode())
    await response.write_eof()
    return response


async def _follow(
    response: web.StreamResponse,
    platform: Platform,
    job_id: str,
    operator: str,
    lines: list[str],
    caller_token: str | None,
) -> None:
    """Writes the lines beyond those sent, reading again until the job has stopped."""
    sent = 0
    while True:
        if len(lines) > sent:
            await response.write("".join(line + "\n" for line in lines[sent:]).encode())
            sent = len(lines)
        status, _ = await platform.job_status(job_id, caller_token)
        stopped = status.state == jobs_pb2.JOB_STATE_STOPPED
        if not stopped:
            await asyncio.sleep(FOLLOW_INTERVAL)
        lines = await platform.read_logs(job_id, operator, caller_token)
        if stopped:
            if len(lines) > sent:
                await response.write("".join(line + "\n" for line in lines[sent:]).encode())
            return


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/jobs", list_jobs)
    app.router.add_get("/api/jobs/{job_id}", get_job)
    app.router.add_delete("/api/jobs/{job_id}", delete_job)
    app.router.add_post("/api/jobs/{job_id}/start", start_job)
    app.router.add_post("/api/jobs/{job_id}/cancel", cancel_job)
    app.router.add_get("/api/jobs/{job_id}/timeline", timeline)
    app.router.add_get("/api/jobs/{job_id}/logs/{operator}", operator_log)
