"""The console's JSON API against a real `aorta up --auth`: pipelines, jobs, payloads, logs,
models and utilization, their answers and errors (unknown ids, bad uploads, bad paging, a job in
the wrong state) as JSON bodies, and a job's changes pushed as Server-Sent Events. Who may call
what is tested in test_console_access.py."""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import Any

import aiohttp
import pytest

from tests.e2e.console_api_platform import (  # noqa: F401  (the fixtures)
    UNKNOWN,
    console_fixture,
    pipelines_fixture,
)
from tests.e2e.console_calls import (
    CSRF,
    EVENT_WAIT,
    bearer,
    call,
    client,
    error_code,
    following,
    form,
    run,
    stopped_named,
    until,
)
from tests.e2e.console_platform import COPY_PIPELINE, Console

pytestmark = pytest.mark.timeout(300)


async def test_pipelines_with_their_files_and_dag(
    console: Console, pipelines: dict[str, str]
) -> None:
    viewer = bearer(console, "vera")
    async with client(console) as session:
        status, body = await call(session, "GET", "/api/pipelines", viewer)
        assert status == 200
        names = {item["name"]: item["pipeline_id"] for item in body["items"]}
        assert names["console-copy"] == pipelines["copy"]
        status, body = await call(session, "GET", f"/api/pipelines/{pipelines['copy']}", viewer)
        assert status == 200 and body["name"] == "console-copy"
        assert body["files"][0]["content"] == COPY_PIPELINE
        dag: dict[str, list[dict[str, str]]] = {"nodes": [{"name": "copy"}, {"name": "report"}]}
        dag["edges"] = [{"from": "copy", "to": "report", "kind": "input"}]
        assert body["dag"] == dag
        status, body = await call(session, "GET", f"/api/pipelines/{pipelines['copy']}/dag", viewer)
        assert status == 200 and body == dag
        for path in (f"/api/pipelines/{UNKNOWN}", f"/api/pipelines/{UNKNOWN}/dag"):
            status, body = await call(session, "GET", path, viewer)
            assert (status, error_code(body)) == (404, "NOT_FOUND"), path
        status, body = await call(session, "GET", "/api/pipelines/not-an-id", viewer)
        assert (status, error_code(body)) == (400, "INVALID_ARGUMENT")


async def test_a_user_runs_a_pipeline_and_follows_it_to_its_outputs(
    console: Console, pipelines: dict[str, str]
) -> None:
    alice = bearer(console, "alice")
    inputs = {"scan.raw": os.urandom(200_000), "readme.txt": b"two files\n"}
    async with client(console) as session:
        async with following(session, alice, stopped_named("followed")) as follow:
            created = await run(
                session, console, "alice", pipelines["copy"], "followed", inputs, priority="HIGHER"
            )
            job_id, payload_id = created["job_id"], created["payload_id"]
            assert created["state"] in {"PENDING", "RUNNING"}
            stored = {item["name"]: item for item in created["files"]}
            for name, content in inputs.items():
                assert stored[f"/input/{name}"]["size"] == len(content)
                assert stored[f"/input/{name}"]["sha256"] == hashlib.sha256(content).hexdigest()

            async with session.get(
                f"/api/jobs/{job_id}/logs/copy?follow=true", headers=alice
            ) as log:
                assert log.status == 200 and log.headers["Content-Type"].startswith("text/plain")
                followed = await log.text()
            assert "copy reads:" in followed

            seen = await asyncio.wait_for(follow, EVENT_WAIT)
            mine = [event for event in seen if event["subject"] == job_id]
            assert mine[-1]["type"] == "org.aorta.job.stopped"
            assert mine[-1]["data"]["status"] == "HEALTHY"

        status, job = await call(session, "GET", f"/api/jobs/{job_id}", alice)
        assert status == 200
        assert (job["state"], job["status"], job["priority"]) == ("STOPPED", "HEALTHY", "HIGHER")
        assert [op["status"] for op in job["operators"]] == ["COMPLETED", "COMPLETED"]
        assert {"from": "copy", "to": "report", "kind": "input"} in job["dag"]["edges"]
        assert {n["name"]: n["status"] for n in job["dag"]["nodes"]} == {
            "copy": "COMPLETED",
            "report": "COMPLETED",
        }
        assert job["duration_seconds"] >= 0 and job["waiting_reason"] is None

        status, timeline = await call(session, "GET", f"/api/jobs/{job_id}/timeline", alice)
        assert status == 200 and timeline["available"] is True
        assert [op["name"] for op in timeline["operators"]] == ["copy", "report"]
        assert "run" in {stage["name"] for stage in timeline["operators"][0]["stages"]}

        async with session.get(f"/api/jobs/{job_id}/logs/report", headers=alice) as log:
            assert "report wrote its copy" in await log.text()
        status, body = await call(session, "GET", f"/api/jobs/{job_id}/logs/nobody", alice)
        assert (status, error_code(body)) == (404, "NOT_FOUND")

        status, payload = await call(session, "GET", f"/api/payloads/{payload_id}", alice)
        assert status == 200 and payload["job_id"] == job_id and payload["type"] == "PIPELINE"
        files = {item["name"]: item for item in payload["files"]}
        output = "/operators/report/scan.raw"
        assert files[output]["sha256"] == hashlib.sha256(inputs["scan.raw"]).hexdigest()

        download = f"/api/payloads/{payload_id}/download"
        async with session.get(download, params={"name": output}, headers=alice) as got:
            assert got.status == 200
            assert got.headers["Content-Disposition"].startswith('attachment; filename="scan.raw"')
            assert await got.read() == inputs["scan.raw"]
        for name, code in [("/operators/report/nothing", 404), ("", 400)]:
            status, body = await call(session, "GET", download, alice, params={"name": name})
            assert status == code and error_code(body), name
        status, body = await call(session, "GET", f"/api/payloads/{UNKNOWN}", alice)
        assert (status, error_code(body)) == (404, "NOT_FOUND")


async def test_bad_uploads_are_refused_and_leave_no_job(
    console: Console, pipelines: dict[str, str]
) -> None:
    alice = {**bearer(console, "alice"), **CSRF}
    path = f"/api/pipelines/{pipelines['copy']}/jobs"
    async with client(console) as session:
        _, before = await call(session, "GET", "/api/jobs", alice)
        file_first = aiohttp.FormData(default_to_multipart=True)
        file_first.add_field("file", b"x", filename="a.raw")
        file_first.add_field("name", "late")
        bad_forms = [
            form("bad", {}, priority="URGENT"),
            form("bad", {}, variables="[1, 2]"),
            form("bad", {}, start="maybe"),
            form("", {"a.raw": b"x"}),
            file_first,
            form("parent", {"..": b"x"}),
            form("itself", {".": b"x"}),
        ]
        for data in bad_forms:
            status, body = await call(session, "POST", path, alice, data=data)
            assert (status, error_code(body)) == (400, "INVALID_ARGUMENT"), body
        status, body = await call(session, "POST", path, alice, json={"name": "json"})
        assert (status, error_code(body)) == (400, "INVALID_ARGUMENT")
        status, body = await call(
            session, "POST", f"/api/pipelines/{UNKNOWN}/jobs", alice, data=form("x", {})
        )
        assert (status, error_code(body)) == (404, "NOT_FOUND")
        _, after = await call(session, "GET", "/api/jobs", alice)
        assert [job["job_id"] for job in after["items"]] == [
            job["job_id"] for job in before["items"]
        ]


async def test_jobs_are_listed_newest_first_filtered_and_paged(
    console: Console, pipelines: dict[str, str]
) -> None:
    bob = bearer(console, "bob")
    async with client(console) as session:
        made = [
            (
                await run(
                    session, console, "bob", pipelines["copy"], f"paged-{n}", {}, start="false"
                )
            )["job_id"]
            for n in range(5)
        ]
        pages: list[str] = []
        cursor: str | None = None
        while True:
            params = {"limit": "2", "state": "PENDING", "pipeline_id": pipelines["copy"]}
            if cursor:
                params["cursor"] = cursor
            status, page = await call(session, "GET", "/api/jobs", bob, params=params)
            assert status == 200 and len(page["items"]) <= 2
            pages += [item["job_id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(pages) == sorted(made) and len(pages) == 5
        status, page = await call(session, "GET", "/api/jobs", bob, params={"state": "STOPPED"})
        assert status == 200 and not set(made) & {item["job_id"] for item in page["items"]}
        future = {"created_after": "2999-01-01T00:00:00Z"}
        status, page = await call(session, "GET", "/api/jobs", bob, params=future)
        assert status == 200 and page == {"items": [], "next_cursor": None}
        past = {"created_before": "2000-01-01T00:00:00Z"}
        status, page = await call(session, "GET", "/api/jobs", bob, params=past)
        assert status == 200 and page == {"items": [], "next_cursor": None}
        for params in (
            {"state": "SLEEPING"},
            {"status": "GREAT"},
            {"limit": "0"},
            {"limit": "many"},
            {"cursor": "not-ours"},
            {"created_after": "yesterday"},
        ):
            status, body = await call(session, "GET", "/api/jobs", bob, params=params)
            assert (status, error_code(body)) == (400, "INVALID_ARGUMENT"), params
        for job_id in made:
            await call(session, "POST", f"/api/jobs/{job_id}/cancel", {**bob, **CSRF})


async def test_start_cancel_and_delete_a_job(console: Console, pipelines: dict[str, str]) -> None:
    bob = {**bearer(console, "bob"), **CSRF}
    async with client(console) as session:
        job_id = (
            await run(session, console, "bob", pipelines["slow"], "lifecycle", {}, start="false")
        )["job_id"]
        status, body = await call(
            session, "POST", f"/api/jobs/{job_id}/start", bob, json={"variables": "no"}
        )
        assert (status, error_code(body)) == (400, "INVALID_ARGUMENT")
        status, body = await call(
            session, "POST", f"/api/jobs/{job_id}/start", bob, json={"variables": {}}
        )
        assert status == 200 and body["job_id"] == job_id and body["state"] != "STOPPED"
        status, body = await call(session, "POST", f"/api/jobs/{job_id}/start", bob)
        assert (status, error_code(body)) == (409, "FAILED_PRECONDITION")
        status, body = await call(session, "DELETE", f"/api/jobs/{job_id}", bob)
        assert (status, error_code(body)) == (409, "FAILED_PRECONDITION")
        status, body = await call(
            session, "POST", f"/api/jobs/{job_id}/cancel", bob, json={"reason": "test"}
        )
        assert status == 200 and body["state"] == "STOPPED" and body["status"] == "CANCELED"
        status, body = await call(session, "DELETE", f"/api/jobs/{job_id}", bob)
        assert status == 200 and body["job_id"] == job_id and body["payload_id"]
        for method, path in [
            ("GET", f"/api/jobs/{job_id}"),
            ("DELETE", f"/api/jobs/{job_id}"),
            ("POST", f"/api/jobs/{UNKNOWN}/start"),
            ("POST", f"/api/jobs/{UNKNOWN}/cancel"),
            ("GET", f"/api/jobs/{UNKNOWN}/timeline"),
            ("GET", f"/api/jobs/{UNKNOWN}/logs/copy"),
        ]:
            status, body = await call(session, method, path, bob)
            assert (status, error_code(body)) == (404, "NOT_FOUND"), (method, path)
        status, body = await call(session, "GET", "/api/jobs/not-an-id", bob)
        assert (status, error_code(body)) == (400, "INVALID_ARGUMENT")


async def test_a_queued_job_says_why_it_waits(console: Console, pipelines: dict[str, str]) -> None:
    alice = bearer(console, "alice")
    async with client(console) as session:
        running = await run(session, console, "alice", pipelines["slow"], "hog", {})
        queued = await run(session, console, "alice", pipelines["slow"], "waiter", {})
        try:

            async def waits() -> dict[str, Any] | None:
                _, job = await call(session, "GET", f"/api/jobs/{queued['job_id']}", alice)
                return dict(job) if job["waiting_reason"] else None

            job = await until(waits)
            assert job["state"] == "PENDING", job
            _, page = await call(session, "GET", "/api/jobs", alice, params={"state": "PENDING"})
            listed = {item["job_id"]: item for item in page["items"]}
            assert listed[queued["job_id"]]["waiting_reason"] == job["waiting_reason"]
        finally:
            for job_id in (queued["job_id"], running["job_id"]):
                await call(session, "POST", f"/api/jobs/{job_id}/cancel", {**alice, **CSRF})


async def test_models_utilization_pages_and_unknown_routes(console: Console) -> None:
    vera = bearer(console, "vera")
    async with client(console) as session:
        status, body = await call(session, "GET", "/api/models", vera)
        assert status == 200 and body == {"items": []}
        status, body = await call(session, "GET", "/api/utilization", vera)
        assert status == 200 and set(body) == {"current", "history"}
        status, body = await call(session, "GET", "/api/utilization?minutes=0", vera)
        assert (status, error_code(body)) == (400, "INVALID_ARGUMENT")
        status, body = await call(session, "GET", "/api/nothing-here", vera)
        assert (status, error_code(body)) == (404, "NOT_FOUND")
        status, body = await call(session, "PUT", "/api/jobs", {**vera, **CSRF})
        assert (status, error_code(body)) == (405, "METHOD_NOT_ALLOWED")
        async with session.get("/") as page:
            assert page.status == 200 and page.headers["Cache-Control"] == "no-cache"
            assert "default-src 'self'" in page.headers["Content-Security-Policy"]
            assert page.headers["X-Frame-Options"] == "DENY"
            assert "<html" in (await page.text()).lower()
