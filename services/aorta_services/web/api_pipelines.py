"""Pipelines: the list, one pipeline with its files and DAG, and running it from a form."""

from __future__ import annotations

import contextlib

from aiohttp import web

from aorta.payload_names import checksums
from aorta_services.web import wire
from aorta_services.web.context import console, token
from aorta_services.web.platform_client import Platform
from aorta_services.web.problems import ApiError, invalid, not_found
from aorta_services.web.uploads import FileStream, JobForm, read_fields


async def list_pipelines(request: web.Request) -> web.Response:
    found = await console(request).platform.pipelines_list(token(request))
    items = sorted((wire.pipeline_summary(p) for p in found), key=lambda p: p["name"].lower())
    return web.json_response({"items": items})


async def _pipeline(request: web.Request) -> dict[str, object]:
    pipeline_id = request.match_info["pipeline_id"]
    answers = await console(request).platform.pipeline_details(pipeline_id, token(request))
    if not answers:
        raise not_found(f"pipeline {pipeline_id} was not found")
    return wire.pipeline(answers, pipeline_id)


async def get_pipeline(request: web.Request) -> web.Response:
    return web.json_response(await _pipeline(request))


async def get_pipeline_dag(request: web.Request) -> web.Response:
    return web.json_response((await _pipeline(request))["dag"])


async def _discard(platform: Platform, job_id: str, caller_token: str | None) -> None:
    """Removes a job whose input could not be stored, so no half-made job stays behind."""
    with contextlib.suppress(ApiError):
        await platform.cancel_job(job_id, "its input files could not be stored", caller_token)
        await platform.delete_job(job_id, caller_token)


async def run_pipeline(request: web.Request) -> web.Response:
    """Creates a job of the pipeline, streams the form's files into its payload and (unless
    `start=false`) starts it. A job whose files fail is removed again."""
    parts, caller_token = console(request), token(request)
    platform = parts.platform
    pipeline_id = request.match_info["pipeline_id"]
    if not request.content_type.startswith("multipart/form-data"):
        raise invalid("send the job as multipart/form-data (fields, then files)")
    reader = await request.multipart()
    fields, first_file = await read_fields(reader)
    form = JobForm.parse(fields)
    created = await platform.create_job(pipeline_id, form.name, form.priority, caller_token)
    job_id, payload_id = created.job_id.value, created.payload_id.value
    files: list[dict[str, object]] = []
    try:
        if first_file is not None:
            stream = FileStream(payload_id, reader, first_file, parts.settings.max_upload_bytes)
            answer = await platform.upload(stream.requests(), payload_id, caller_token)
            if stream.failure is not None:
                raise stream.failure
            digests = checksums(answer.header.messages)
            files = [
                {
                    "name": f"/input/{name}",
                    "size": size,
                    "mode": 0o644,
                    "sha256": digests.get(f"/input/{name}"),
                }
                for name, size in stream.sent
            ]
        state, status = "PENDING", "HEALTHY"
        if form.start:
            started = await platform.start_job(job_id, form.variables, caller_token)
            state, status = wire.state_name(started.state), wire.status_name(started.status)
    except BaseException:
        await _discard(platform, job_id, caller_token)
        raise
    document = {
        "job_id": job_id,
        "payload_id": payload_id,
        "state": state,
        "status": status,
        "files": files,
    }
    return web.json_response(document, status=201)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/pipelines", list_pipelines)
    app.router.add_get("/api/pipelines/{pipeline_id}", get_pipeline)
    app.router.add_get("/api/pipelines/{pipeline_id}/dag", get_pipeline_dag)
    app.router.add_post("/api/pipelines/{pipeline_id}/jobs", run_pipeline)
