"""Creating a container through Podman's own API (libpod), where its Docker-compatible one falls
short: it is the only one of the two that gives a container a GPU by its CDI name (see
`aorta.triton.container.spec`).

One call, over the engine's own socket (`unix:///...` or `tcp://host:port`), with the errors of
`aorta.executors.container.engine`: 404 (no such image) is `NotFound`, 409 (the name is taken)
`Conflict`, an engine that cannot be reached `Unavailable`, anything else it refuses `Invalid`
with Podman's own reason. Everything else about the container (start, inspect, wait, stop,
remove, logs) goes through the Docker-compatible API as for any engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from aorta.errors import Conflict, Invalid, NotFound, Unavailable

API_VERSION = "v4.0.0"
"""Any libpod version Podman 4 and later answer under."""
TIMEOUT = aiohttp.ClientTimeout(total=120)


async def create_container(host: str, spec: Mapping[str, Any]) -> str:
    """Creates the container libpod's `SpecGenerator` `spec` describes on the Podman engine at
    `host`; its id."""
    name = str(spec.get("name", ""))
    address = urlsplit(host)
    if address.scheme == "unix":
        connector: aiohttp.BaseConnector = aiohttp.UnixConnector(path=address.path)
        base = "http://podman"
    elif address.scheme == "tcp" and address.hostname and address.port:
        connector = aiohttp.TCPConnector()
        base = f"http://{address.hostname}:{address.port}"
    else:
        raise Invalid(f"unsupported container engine address {host!r} (unix:// or tcp://)")
    url = f"{base}/{API_VERSION}/libpod/containers/create"
    try:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=TIMEOUT) as session,
            session.post(url, json=dict(spec)) as answer,
        ):
            status = answer.status
            body = await answer.json(content_type=None)
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as error:
        raise Unavailable(
            f"container {name}: the container engine at {host} did not answer ({error})"
        ) from None
    if status == 201 and isinstance(body, dict) and body.get("Id"):
        return str(body["Id"])
    reason = f"container {name}: {_message(body) or f'status {status}'}"
    if status == 404:
        raise NotFound(reason)
    if status == 409:
        raise Conflict(reason)
    raise Invalid(reason)


def _message(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("message") or body.get("cause") or "")
    return ""
