"""Sign-in, sign-out, who the caller is, and the API's own description."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import web

from aorta_services.web.context import console, token
from aorta_services.web.platform_client import Caller
from aorta_services.web.problems import ApiError, invalid
from aorta_services.web.sessions import COOKIE

OPENAPI = Path(__file__).with_name("openapi.json")


def whoami_document(caller: Caller, *, signed_in: bool, version: str = "") -> dict[str, Any]:
    """A `WhoAmI`."""
    return {
        "auth": caller.authentication,
        "signed_in": signed_in,
        "subject": caller.subject,
        "roles": list(caller.roles),
        "role": caller.role,
        "version": version,
    }


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=OPENAPI.read_bytes(), content_type="application/json")


async def whoami(request: web.Request) -> web.Response:
    """The caller; `signed_in` false (not a 401) when the platform wants credentials and the
    request has none that it accepts, so the page can offer to sign in."""
    platform = console(request).platform
    try:
        presented = token(request)
        caller = await platform.who_am_i(presented)
    except ApiError as error:
        if error.code != "UNAUTHENTICATED":
            raise
        return web.json_response(whoami_document(Caller(True, "", ()), signed_in=False))
    version = await platform.version(presented)
    return web.json_response(whoami_document(caller, signed_in=True, version=version))


async def _token_of(request: web.Request) -> str:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise invalid('send {"token": "..."} as JSON') from None
    given = body.get("token") if isinstance(body, dict) else None
    if not isinstance(given, str) or not given.strip():
        raise invalid(
            'send {"token": "..."}: a token from `aorta token create` or your OIDC sign-in'
        )
    return given.strip()


async def sign_in(request: web.Request) -> web.Response:
    """Checks the token with the platform, then opens a session and sets its cookie."""
    parts = console(request)
    given = await _token_of(request)
    caller = await parts.platform.who_am_i(given)
    version = await parts.platform.version(given)
    response = web.json_response(whoami_document(caller, signed_in=True, version=version))
    response.set_cookie(
        COOKIE,
        parts.sessions.open(given),
        httponly=True,
        samesite="Strict",
        secure=parts.secure_cookies,
        path="/",
        max_age=int(parts.settings.session_seconds),
    )
    return response


async def sign_out(request: web.Request) -> web.Response:
    parts = console(request)
    session_id = request.cookies.get(COOKIE)
    if session_id:
        parts.sessions.close(session_id)
    response = web.Response(status=204)
    response.del_cookie(COOKIE, path="/", samesite="Strict", secure=parts.secure_cookies)
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/openapi.json", openapi)
    app.router.add_get("/api/whoami", whoami)
    app.router.add_post("/api/session", sign_in)
    app.router.add_delete("/api/session", sign_out)
