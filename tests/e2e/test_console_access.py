"""Who may call the console's JSON API, against a real `aorta up --auth`: every path of
openapi.json refuses a caller without a token, state changes need the console's header, a
session cookie is strict and ends with sign-out, a viewer reads but changes nothing, and a user
sees only its own jobs and their events; each refusal a JSON body."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

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
)
from tests.e2e.console_platform import Console

pytestmark = pytest.mark.timeout(300)

OPENAPI = Path(__file__).parents[2] / "services" / "aorta_services" / "web" / "openapi.json"


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
