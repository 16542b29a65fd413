"""The direct path for browsers: pre-signed URLs of the blob store (docs/payloads.md).

The console asks the gateway (`aorta.v1.Payloads`) with the signed-in user's token, so the
gateway's rules apply as they are (ownership, read-only payloads, roles); the browser then
PUTs or GETs the bytes itself, straight to the store, and asks the console to commit an upload.
`supported: false` means the platform offers no URL (a local blob store): the browser then uses
`GET /api/payloads/{id}/download`, or uploads through a job's form.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from aorta.api import aorta_payloads_pb2, payloads_pb2
from aorta.payload_names import checksums
from aorta_services.web.context import console, token
from aorta_services.web.platform_client import checked, identifier, request_header
from aorta_services.web.problems import invalid

_MAX_MODE = 0o7777


async def _presented_token(request: web.Request) -> str | None:
    """The request's token; with none, the platform is asked first, so a caller without
    credentials is refused (401) before its body is judged, as on every other path."""
    presented = token(request)
    if presented is None:
        await console(request).platform.who_am_i(None)
    return presented


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise invalid("the request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    return body


def _text(body: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = body.get(key, "")
    if not isinstance(value, str) or (required and not value):
        raise invalid(f"`{key}` must be a non-empty string")
    return value


def _count(body: dict[str, Any], key: str, default: int | None = None) -> int:
    value = body.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise invalid(f"`{key}` must be a whole number of at least 0")
    return value


def _link(link: aorta_payloads_pb2.DirectLink) -> dict[str, Any]:
    return {
        "url": link.url,
        "method": link.method,
        "headers": dict(link.headers),
        "expires_in_seconds": link.expires_in_seconds,
    }


async def start_upload(request: web.Request) -> web.Response:
    """URLs to PUT one file's parts to: `{name, size}` in, `{supported, upload_id, part_size,
    parts}` out."""
    presented = await _presented_token(request)
    payload_id = request.match_info["payload_id"]
    body = await _body(request)
    name, size = _text(body, "name"), _count(body, "size")
    platform = console(request).platform
    asked = await platform.unary(
        "Payloads.DirectUpload",
        platform.aorta_payloads.DirectUpload,
        aorta_payloads_pb2.PayloadsDirectUploadRequest(
            header=request_header(), payload_id=identifier(payload_id), name=name, size=size
        ),
        presented,
    )
    checked(asked, f"uploading {name} to payload {payload_id}")
    if not asked.supported:
        return web.json_response({"supported": False, "message": " ".join(asked.header.messages)})
    return web.json_response(
        {
            "supported": True,
            "upload_id": asked.upload_id,
            "part_size": asked.part_size,
            "parts": [_link(link) for link in asked.parts],
        }
    )


async def commit_upload(request: web.Request) -> web.Response:
    """Makes a PUT file part of the payload once the platform checked it: `{name, size, sha256,
    part_md5s, mode?}` in, the file as recorded out."""
    presented = await _presented_token(request)
    payload_id = request.match_info["payload_id"]
    body = await _body(request)
    name, size, sha256 = _text(body, "name"), _count(body, "size"), _text(body, "sha256")
    part_md5s = body.get("part_md5s")
    if not isinstance(part_md5s, list) or not all(isinstance(m, str) for m in part_md5s):
        raise invalid("`part_md5s` must be a list of each part's MD5, as hex strings")
    mode = _count(body, "mode", 0o644)
    if mode > _MAX_MODE:
        raise invalid("`mode` must be permission bits, at most 0o7777")
    platform = console(request).platform
    done = await platform.unary(
        "Payloads.CommitDirectUpload",
        platform.aorta_payloads.CommitDirectUpload,
        aorta_payloads_pb2.PayloadsCommitDirectUploadRequest(
            header=request_header(),
            payload_id=identifier(payload_id),
            upload_id=request.match_info["upload_id"],
            details=payloads_pb2.PayloadFileDetails(name=name, size=size, mode=mode),
            sha256=sha256,
            part_md5s=part_md5s,
        ),
        presented,
    )
    checked(done, f"uploading {name} to payload {payload_id}")
    stored = done.details.name
    return web.json_response(
        {
            "name": stored,
            "size": done.details.size,
            "mode": done.details.mode,
            "sha256": checksums(done.header.messages).get(stored),
        }
    )


async def download_link(request: web.Request) -> web.Response:
    """A URL to GET one file from: `?name=` in, `{supported, name, size, link}` out."""
    presented = await _presented_token(request)
    payload_id = request.match_info["payload_id"]
    name = request.query.get("name", "")
    if not name:
        raise invalid("name the file to download, as the payload lists it: ?name=/input/scan.dcm")
    platform = console(request).platform
    answer = await platform.unary(
        "Payloads.DirectDownload",
        platform.aorta_payloads.DirectDownload,
        aorta_payloads_pb2.PayloadsDirectDownloadRequest(
            header=request_header(), payload_id=identifier(payload_id), name=name
        ),
        presented,
    )
    checked(answer, f"downloading {name} from payload {payload_id}")
    found = {"name": answer.details.name, "size": answer.details.size}
    if not answer.supported:
        message = " ".join(answer.header.messages)
        return web.json_response({"supported": False, "message": message, **found})
    return web.json_response({"supported": True, **found, "link": _link(answer.link)})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/payloads/{payload_id}/direct-uploads", start_upload)
    app.router.add_post(
        "/api/payloads/{payload_id}/direct-uploads/{upload_id}/commit", commit_upload
    )
    app.router.add_get("/api/payloads/{payload_id}/direct-download", download_link)
