"""Which container engine answers on this machine, if any: what `auto` decides on.

A Docker Engine or Podman API service answers `GET /_ping` with `OK`; `GET /version` then names
it. Both are spoken here over a raw HTTP/1.0 exchange (a unix socket or `tcp://host:port`), so
the probe loads no Docker client: a platform that ends up running host processes never imports
one. `AORTA_CONTAINER_HOST` names the engine; without it `DOCKER_HOST`, and without that the
usual sockets of Docker and Podman (rootful, then the user's own), in that order.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

CONTAINER_HOST = "AORTA_CONTAINER_HOST"
DOCKER_HOST = "DOCKER_HOST"
USUAL_SOCKETS = ("/var/run/docker.sock", "/run/podman/podman.sock")
PROBE_TIMEOUT = 2.0
_MAX_ANSWER = 64 * 1024


@dataclass(frozen=True)
class Engine:
    """An engine that answered: its address, product name (`Docker`, `Podman`) and version."""

    host: str
    name: str
    version: str

    def describe(self) -> str:
        """`Podman 4.3.1 at unix:///run/podman/podman.sock`."""
        version = f" {self.version}" if self.version else ""
        return f"{self.name}{version} at {self.host}"


@dataclass(frozen=True)
class Detection:
    """What a probe found: the first engine that answered, every address tried, those that
    took the connection but did not answer in time (an engine may be there, only slow), and
    those that answered `/_ping` with something else than OK (one may be starting)."""

    engine: Engine | None
    tried: tuple[str, ...]
    slow: tuple[str, ...] = ()
    unready: tuple[str, ...] = ()

    def describe(self) -> str:
        """The reason `auto` gives for its choice, fit for a start-up line."""
        if self.engine is not None:
            return f"operators run in containers ({self.engine.describe()})"
        return (
            "operators run as host processes: no container engine answered at "
            f"{', '.join(self.tried) or 'any address'}"
        )


def candidate_hosts(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The engine addresses to try, in order: `AORTA_CONTAINER_HOST`, else `DOCKER_HOST`, else
    the usual Docker and Podman sockets (`$XDG_RUNTIME_DIR/podman/podman.sock` last)."""
    for name in (CONTAINER_HOST, DOCKER_HOST):
        value = environ.get(name, "").strip()
        if value:
            return (value,)
    sockets = list(USUAL_SOCKETS)
    runtime_dir = environ.get("XDG_RUNTIME_DIR", "").strip()
    if runtime_dir:
        sockets.append(f"{runtime_dir.rstrip('/')}/podman/podman.sock")
    return tuple(f"unix://{path}" for path in sockets)


def default_host(environ: Mapping[str, str]) -> str:
    """The address an executor asked for by name (not by `auto`) uses when no engine has been
    probed: the first candidate."""
    return candidate_hosts(environ)[0]


async def detect(environ: Mapping[str, str], within: float = PROBE_TIMEOUT) -> Detection:
    """Probes every candidate address in order; returns at the first engine that answers.
    Each probe is bounded by `within` seconds; an absent or broken engine raises nothing."""
    tried: list[str] = []
    slow: list[str] = []
    unready: list[str] = []
    for host in candidate_hosts(environ):
        tried.append(host)
        try:
            engine = await _probe(host, within)
        except TimeoutError:
            slow.append(host)
            continue
        except _Unready:
            unready.append(host)
            continue
        if engine is not None:
            return Detection(engine, tuple(tried), tuple(slow), tuple(unready))
    return Detection(None, tuple(tried), tuple(slow), tuple(unready))


async def probe(host: str, within: float = PROBE_TIMEOUT) -> Engine | None:
    """The engine at `host` (`unix:///path` or `tcp://host:port`) if it answers `/_ping` with OK
    within `within` seconds, else None. A failing `/version` still counts as an engine, unnamed."""
    try:
        return await _probe(host, within)
    except (TimeoutError, _Unready):
        return None


class _Unready(Exception):
    """Something answered `/_ping` at the address, but not with OK."""


async def _probe(host: str, within: float) -> Engine | None:
    """`probe`, raising `TimeoutError` where the address took the connection (or the timeout
    came first) but no answer came within `within` seconds, `_Unready` for a ping not OK."""
    try:
        async with asyncio.timeout(within):
            status, body = await _get(host, "/_ping")
            if status != 200 or body.strip() != b"OK":
                raise _Unready(host)
            status, body = await _get(host, "/version")
    except TimeoutError:
        raise  # an OSError too, but the one that may only mean "not yet"
    except (OSError, ValueError, asyncio.IncompleteReadError):
        return None
    if status != 200:
        return Engine(host, "container engine", "")
    return _named(host, body)


async def has_image(host: str, reference: str, within: float = PROBE_TIMEOUT) -> bool:
    """Whether the engine at `host` holds the image `reference` (`GET /images/NAME/json`);
    False too when the engine does not answer within `within` seconds."""
    try:
        async with asyncio.timeout(within):
            status, _ = await _get(host, f"/images/{quote(reference, safe='/:@')}/json")
    except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
        return False
    return status == 200


def _named(host: str, body: bytes) -> Engine:
    try:
        version = json.loads(body)
    except ValueError:
        return Engine(host, "container engine", "")
    if not isinstance(version, dict):
        return Engine(host, "container engine", "")
    components = version.get("Components") or []
    for component in components if isinstance(components, list) else []:
        if isinstance(component, dict) and "podman" in str(component.get("Name", "")).lower():
            return Engine(host, "Podman", str(component.get("Version", "")))
    return Engine(host, "Docker", str(version.get("Version", "")))


async def _get(host: str, path: str) -> tuple[int, bytes]:
    """One HTTP/1.0 GET (so never a chunked answer); the status code and the body."""
    reader, writer = await _connect(host)
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: engine\r\n\r\n".encode("ascii"))
        await writer.drain()
        answer = await reader.read(_MAX_ANSWER)
        while True:
            more = await reader.read(_MAX_ANSWER)
            if not more or len(answer) >= _MAX_ANSWER:
                break
            answer += more
    finally:
        writer.close()
        await asyncio.gather(writer.wait_closed(), return_exceptions=True)
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[1].isdigit():
        raise ValueError(f"not an HTTP answer from {host}")
    return int(status_line[1]), body


async def _connect(host: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    address = urlsplit(host)
    if address.scheme == "unix":
        return await asyncio.open_unix_connection(address.path)
    if address.scheme == "tcp" and address.hostname and address.port:
        return await asyncio.open_connection(address.hostname, address.port)
    raise ValueError(f"unsupported container engine address {host!r} (unix:// or tcp://)")
