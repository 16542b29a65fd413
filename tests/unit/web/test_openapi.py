"""The committed OpenAPI file describes exactly the console's routes."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web
from openapi_spec_validator import validate

from aorta_services.web.context import Console
from aorta_services.web.events import EventHub
from aorta_services.web.platform_client import Platform
from aorta_services.web.server import build_app
from aorta_services.web.sessions import Sessions
from aorta_services.web.settings import WebSettings
from aorta_services.web.utilization import History

OPENAPI = Path(__file__).parents[3] / "services" / "aorta_services" / "web" / "openapi.json"
_METHODS = {"get", "post", "put", "patch", "delete"}


def _documented() -> set[tuple[str, str]]:
    spec = json.loads(OPENAPI.read_text())
    return {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in _METHODS
    }


async def _routed() -> set[tuple[str, str]]:
    settings = WebSettings(
        address="127.0.0.1:0",
        gateway="127.0.0.1:1",
        gateway_ca=None,
        gateway_server_name="",
        gateway_plaintext=False,
        max_upload_bytes=1 << 20,
        session_seconds=60.0,
        tls_cert=None,
        tls_key=None,
    )
    platform = Platform.connect(settings.gateway, tls=False)
    try:
        parts = Console(
            platform=platform,
            sessions=Sessions(60.0),
            hub=EventHub(_no_owner),
            settings=settings,
            history=History(),
            secure_cookies=False,
        )
        app: web.Application = build_app(parts)
        return {
            (route.method, route.resource.canonical)
            for route in app.router.routes()
            if route.resource is not None
            and route.resource.canonical.startswith("/api/")
            and route.method != "HEAD"
        }
    finally:
        await platform.close()


async def _no_owner(job_id: str, token: str | None) -> str:
    raise AssertionError("no event is looked at here")


def test_the_file_is_valid_openapi_3_1() -> None:
    spec = json.loads(OPENAPI.read_text())
    assert spec["openapi"].startswith("3.1")
    validate(spec)


async def test_every_route_is_documented_and_every_documented_path_is_routed() -> None:
    routed = await _routed()
    documented = _documented()
    assert routed - documented == set(), "routes missing from openapi.json"
    assert documented - routed == set(), "documented paths the console does not serve"


def test_every_error_answer_has_the_json_error_body() -> None:
    spec = json.loads(OPENAPI.read_text())
    for name, answer in spec["components"]["responses"].items():
        schema = answer["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Error"}, name
    error = spec["components"]["schemas"]["Error"]["properties"]["error"]
    assert error["required"] == ["code", "message"]
