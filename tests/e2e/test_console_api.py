"""The console's JSON API against a real `aorta up --auth`: every path of openapi.json, its
answers and its errors (unknown ids, bad uploads, no token, a stale session, a missing CSRF
header, the wrong role) as JSON bodies, and a job's changes pushed as Server-Sent Events."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

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
from tests.e2e.console_platform import (
    COPY_PIPELINE,
    SLOW_PIPELINE,
    Console,
    running_console,
)

pytestmark = pytest.mark.timeout(300)

OPENAPI = Path(__file__).parents[2] / "services" / "aorta_services" / "web" / "openapi.json"
UNKNOWN = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    people = {"alice": "user", "bob": "user", "vera": "viewer"}
    with running_console(tmp_path_factory.mktemp("console-api"), people) as console:
        yield console


@pytest.fixture(scope="module")
def pipelines(console: Console, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("console-api-pipelines")
    (folder / "copy").mkdir()
    (folder / "slow").mkdir()
    return {
        "copy": console.pipeline("alice", folder / "copy", COPY_PIPELINE),
        "slow": console.pipeline("alice", folder / "slow", SLOW_PIPELINE),
    }


async def test_every_documented_path_refuses_a_caller_without_a_token(console: Console) -> None:
    spec = json.loads(OPENAPI.read_text())
    open_paths = {"/api/openapi.json", "/api/session", "/api/whoami"}
    async with client(console) as session:
        status, served = await call(session, "GET", "/api/openapi.json")
        assert status == 200 and served == spec
        for path, item in spec["paths"].items():
            if path in open_paths:
                continue
            filled = path.replace("{operator}", "copy")
            for name in ("job_id", "pipeline_id", "payload_id", "upload_id"):
                filled = filled.replace("{" + name + "}", UNKNOWN)
            for method, operation in item.items():
                multipart = "multipart/form-data" in operation.get("requestBody", {}).get(
                    "content", {}
                )
                options: dict[str, Any] = {
                    "params": {
                        parameter["name"]: "/input/a.raw"
                        for parameter in operation.get("parameters", [])
                        if parameter["in"] == "query" and parameter.get("required")
                    }
                }
                if multipart:
                    options["data"] = form("anonymous", {"a.raw": b"x"})
                status, body = await call(session, method.upper(), filled, dict(CSRF), **options)
                assert (status, error_code(body)) == (401, "UNAUTHENTICATED"), (method, path)


async def test_state_changes_need_the_console_header(console: Console) -> None:
    async with client(console) as session:
        for method, path in [
            ("POST", f"/api/jobs/{UNKNOWN}/cancel"),
            ("POST", f"/api/jobs/{UNKNOWN}/start"),
            ("DELETE", f"/api/jobs/{UNKNOWN}"),
            ("POST", f"/api/pipelines/{UNKNOWN}/jobs"),
            ("POST", "/api/session"),
            ("DELETE", "/api/session"),
        ]:
            status, body = await call(session, method, path, bearer(console, "admin"))
            assert (status, error_code(body)) == (403, "CSRF_HEADER_MISSING"), path


async def test_sign_in_sets_a_strict_cookie_that_ends_with_sign_out(console: Console) -> None:
    async with client(console) as session:
        status, body = await call(session, "GET", "/api/whoami")
        assert status == 200 and body["auth"] is True and body["signed_in"] is False
        status, body = await call(session, "POST", "/api/session", CSRF, json={"token": "nope"})
        assert (status, error_code(body)) == (401, "UNAUTHENTICATED")
        assert "nope" not in body["error"]["message"]
        status, body = await call(session, "POST", "/api/session", CSRF, json={"tok": 1})
        assert (status, error_code(body)) == (400, "INVALID_ARGUMENT")
        status, body = await call(session, "POST", "/api/session", CSRF, data=b"{not json")
        assert (status, error_code(body)) == (400, "INVALID_ARGUMENT")

        token = {"token": console.tokens["alice"]}
        async with session.post("/api/session", headers=CSRF, json=token) as signed:
            assert signed.status == 200
            cookie = signed.headers["Set-Cookie"]
            me = await signed.json()
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        assert console.tokens["alice"] not in cookie
        assert me["subject"] == "alice" and me["role"] == "user" and me["roles"] == ["user"]
        status, body = await call(session, "GET", "/api/whoami")
        assert body["signed_in"] is True and body["subject"] == "alice" and body["version"]
        status, body = await call(session, "GET", "/api/jobs")
        assert status == 200, body

        session_cookie = session.cookie_jar.filter_cookies(URL(console.base))["aorta_session"].value
        async with session.delete("/api/session", headers=CSRF) as out:
            assert out.status == 204
        stale = {"Cookie": f"aorta_session={session_cookie}"}
        async with aiohttp.ClientSession(console.base) as fresh:
            status, body = await call(fresh, "GET", "/api/jobs", stale)
            assert (status, error_code(body)) == (401, "UNAUTHENTICATED")
            status, body = await call(fresh, "GET", "/api/whoami", stale)
            assert status == 200 and body["signed_in"] is False


async def test_whoami_names_each_role(console: Console) -> None:
    async with client(console) as session:
        for who, role in [("admin", "admin"), ("bob", "user"), ("vera", "viewer")]:
            status, body = await call(session, "GET", "/api/whoami", bearer(console, who))
            assert status == 200 and body["subject"] == who and body["role"] == role


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


async def test_a_viewer_reads_but_may_not_change_read_logs_or_download(
    console: Console, pipelines: dict[str, str]
) -> None:
    vera = {**bearer(console, "vera"), **CSRF}
    async with client(console) as session:
        created = await run(session, console, "alice", pipelines["copy"], "viewed", {"a": b"1"})
        job_id, payload_id = created["job_id"], created["payload_id"]
        status, listed = await call(session, "GET", "/api/jobs", vera)
        assert status == 200 and job_id in {item["job_id"] for item in listed["items"]}
        status, _ = await call(session, "GET", f"/api/jobs/{job_id}", vera)
        assert status == 200
        status, payload = await call(session, "GET", f"/api/payloads/{payload_id}", vera)
        assert status == 200 and payload["files"]
        refused: list[tuple[str, str, dict[str, Any]]] = [
            ("POST", f"/api/jobs/{job_id}/cancel", {}),
            ("POST", f"/api/jobs/{job_id}/start", {}),
            ("DELETE", f"/api/jobs/{job_id}", {}),
            ("GET", f"/api/jobs/{job_id}/logs/copy", {}),
            ("GET", f"/api/payloads/{payload_id}/download", {"params": {"name": "/input/a"}}),
            ("POST", f"/api/pipelines/{pipelines['copy']}/jobs", {"data": form("v", {})}),
        ]
        for method, path, options in refused:
            status, body = await call(session, method, path, vera, **options)
            assert (status, error_code(body)) == (403, "PERMISSION_DENIED"), (method, path)
        await call(
            session, "POST", f"/api/jobs/{job_id}/cancel", {**bearer(console, "alice"), **CSRF}
        )


async def test_a_user_sees_only_its_own_jobs_and_their_events(
    console: Console, pipelines: dict[str, str]
) -> None:
    bob = bearer(console, "bob")
    async with client(console) as session:
        async with following(
            session, bob, lambda e: e["data"].get("name") == "bobs"
        ) as bobs_events:
            alices = await run(session, console, "alice", pipelines["copy"], "alices", {"a": b"1"})
            status, body = await call(
                session, "POST", f"/api/jobs/{alices['job_id']}/cancel", {**bob, **CSRF}
            )
            assert (status, error_code(body)) == (403, "PERMISSION_DENIED")
            bobs = await run(session, console, "bob", pipelines["copy"], "bobs", {"b": b"2"})
            seen = await asyncio.wait_for(bobs_events, EVENT_WAIT)
            subjects = {
                event["subject"] for event in seen if event["type"].startswith("org.aorta.job.")
            }
            assert bobs["job_id"] in subjects and alices["job_id"] not in subjects
        status, listed = await call(session, "GET", "/api/jobs", bob, params={"limit": "500"})
        listed_ids = {item["job_id"] for item in listed["items"]}
        assert bobs["job_id"] in listed_ids and alices["job_id"] not in listed_ids


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
