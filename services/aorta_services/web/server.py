"""The console's HTTP application: the API's routes, the pages' files, and the manners every
response shares.

- Every API failure is JSON (`problems.ApiError`), unknown routes and methods under `/api/`
  included; anything unexpected is logged with its traceback and answered as INTERNAL with the
  request id, never with the traceback.
- A state-changing request (POST, PUT, PATCH, DELETE) must carry `X-Aorta-Console: 1`. A page
  of another site cannot set a custom header without the console's consent (CORS), so the
  header stops cross-site request forgery on top of the SameSite cookie.
- Every response carries a strict Content-Security-Policy (`default-src 'self'`: every asset
  is the console's own) and refuses framing and MIME sniffing.
- Pages are the files of `static/`: `index.html` (also for any other path that is not a file,
  so the page's own routes survive a reload) is revalidated on every load; files under
  `static/assets/` are versioned by name and cached for a year.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from aiohttp import web

from aorta.ids import new_id
from aorta.logger import get_logger
from aorta_services.web import (
    api_data,
    api_direct,
    api_events,
    api_jobs,
    api_pipelines,
    api_session,
)
from aorta_services.web.context import CONSOLE, Console
from aorta_services.web.problems import ApiError

log = get_logger(__name__)

STATIC = Path(__file__).with_name("static")
CSRF_HEADER = "X-Aorta-Console"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
_CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_HTTP_CODES = {
    400: "INVALID_ARGUMENT",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _api(request: web.Request) -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def _harden(response: web.StreamResponse) -> None:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")


async def _harden_every_response(request: web.Request, response: web.StreamResponse) -> None:
    """Adds the shared headers to every response, streams included, before it is sent."""
    _harden(response)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure under /api/ as `{"error": {"code", "message"}}`; every log line of the
    request carries its id, method and path."""
    request_id = new_id()
    with structlog.contextvars.bound_contextvars(
        request_id=request_id, method=request.method, path=request.path
    ):
        return await _answered(request, handler, request_id)


async def _answered(request: web.Request, handler: Handler, request_id: str) -> web.StreamResponse:
    try:
        if _api(request) and request.method in _CHANGES and request.headers.get(CSRF_HEADER) != "1":
            raise ApiError(
                403,
                "CSRF_HEADER_MISSING",
                f"state-changing requests must carry the header {CSRF_HEADER}: 1",
            )
        return await handler(request)
    except ApiError as error:
        return web.json_response(error.body(), status=error.status)
    except web.HTTPException as error:
        if not _api(request) or error.status < 400:
            raise
        code = _HTTP_CODES.get(error.status, "INVALID_ARGUMENT")
        message = error.reason if error.status != 404 else f"no such API route: {request.path}"
        return web.json_response(ApiError(error.status, code, message).body(), status=error.status)
    except (ConnectionResetError, TimeoutError):
        raise
    except Exception:
        log.exception("console.request_failed")
        body = ApiError(500, "INTERNAL", f"internal error (request {request_id})").body()
        return web.json_response(body, status=500)


async def page(request: web.Request) -> web.StreamResponse:
    """A file of `static/`, or `index.html` for a path that names none."""
    relative = request.match_info.get("path", "")
    root = STATIC.resolve()
    target = (root / relative).resolve() if relative else root / "index.html"
    if not target.is_relative_to(root) or not target.is_file():
        if "." in relative.rsplit("/", 1)[-1]:
            raise web.HTTPNotFound()
        target = root / "index.html"
    if not target.is_file():
        raise web.HTTPNotFound(text="the console's pages are not installed")
    response = web.FileResponse(target)
    if target.parent.name == "assets":
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    else:
        response.headers["Cache-Control"] = "no-cache"
    return response


def build_app(parts: Console) -> web.Application:
    """The console's application over `parts`."""
    app = web.Application(middlewares=[json_errors], client_max_size=1024 * 1024)
    app[CONSOLE] = parts
    app.on_response_prepare.append(_harden_every_response)
    for module in (api_session, api_jobs, api_pipelines, api_data, api_direct, api_events):
        module.add_routes(app)
    app.router.add_get("/", page)
    app.router.add_get("/{path:(?!api/).*}", page)
    return app
