"""Composition root of the web console: settings, the gateway channel, the event hub and the
HTTP server.

The console listens where `AORTA_WEB_ADDRESS` says; beyond loopback only with authentication
on the platform (or `AORTA_INSECURE`), exactly as the gateway (`aorta.auth.exposure`). It
serves HTTPS with the gateway's certificate when the gateway has one, calls the gateway over
TLS when it serves TLS, and never sends a token in clear beyond loopback.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from aorta.auth.exposure import exposure_warnings, is_loopback
from aorta.logger import get_logger
from aorta.runtime.service import ServiceContext
from aorta.settings import Settings, SettingsError
from aorta_services.web.context import Console
from aorta_services.web.events import EventHub
from aorta_services.web.platform_client import Platform
from aorta_services.web.server import build_app
from aorta_services.web.sessions import Sessions
from aorta_services.web.settings import WebSettings
from aorta_services.web.utilization import History

log = get_logger(__name__)

SHUTDOWN_SECONDS = 5.0
"""How long requests in hand (downloads, followed logs) may take to finish at stop."""


@dataclass
class RunningConsole:
    """A serving console; `port` is the bound port (useful when asked for port 0)."""

    name: str
    port: int
    runner: web.AppRunner
    hub: EventHub
    platform: Platform

    async def stop(self, grace: float) -> None:
        """Ends the event streams, lets requests in hand finish (within `SHUTDOWN_SECONDS`,
        below any `grace`), then closes the gateway channel."""
        await self.hub.stop()
        await self.runner.cleanup()
        await self.platform.close()
        log.info("console.stopped")


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.expanduser().read_bytes()
    except OSError as exc:
        raise SettingsError(f"{setting}: cannot read {path}: {exc.strerror}") from exc


def gateway_channel(web_settings: WebSettings, platform: Settings) -> Platform:
    """The channel to the gateway: TLS when a CA is given or the gateway serves TLS (trusting
    the public CAs without one); plain text only to loopback or with
    `AORTA_WEB_GATEWAY_PLAINTEXT`, since the browsers' tokens ride on it."""
    if web_settings.gateway_ca is not None:
        ca = _read(web_settings.gateway_ca, "AORTA_WEB_GATEWAY_CA")
        return Platform.connect(
            web_settings.gateway, tls=True, ca=ca, server_name=web_settings.gateway_server_name
        )
    if platform.gateway_tls:
        return Platform.connect(
            web_settings.gateway, tls=True, server_name=web_settings.gateway_server_name
        )
    if not is_loopback(web_settings.gateway) and not web_settings.gateway_plaintext:
        raise SettingsError(
            f"the console would send users' tokens in clear text to {web_settings.gateway}: "
            "set AORTA_WEB_GATEWAY_CA to the CA of the gateway's certificate, or, on a network "
            "you trust, AORTA_WEB_GATEWAY_PLAINTEXT=true"
        )
    return Platform.connect(web_settings.gateway, tls=False)


def server_tls(web_settings: WebSettings) -> ssl.SSLContext | None:
    """HTTPS with the gateway's certificate and key, when it has them."""
    if web_settings.tls_cert is None:
        return None
    if web_settings.tls_key is None:
        raise SettingsError("AORTA_GATEWAY_TLS_CERT is set, so AORTA_GATEWAY_TLS_KEY must be too")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(web_settings.tls_cert, web_settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(f"the console cannot load its certificate and key: {exc}") from exc
    return context


async def start(ctx: ServiceContext, *, environ: Mapping[str, str] = os.environ) -> RunningConsole:
    """Serves the console; returns once it listens. Its own settings (`WebSettings`) come
    from `environ`, the process environment by default. Raises `SettingsError` before
    listening when the address is refused or the TLS files cannot be read."""
    web_settings = WebSettings.from_env(environ, ctx.settings)
    for event, message in exposure_warnings(ctx.settings, web_settings.address, door="console"):
        log.warning(event, address=web_settings.address, message=message)
    tls = server_tls(web_settings)
    platform = gateway_channel(web_settings, ctx.settings)
    hub = EventHub(lambda job_id, token: _owner(platform, job_id, token))
    parts = Console(
        platform=platform,
        sessions=Sessions(web_settings.session_seconds),
        hub=hub,
        settings=web_settings,
        history=History(),
        secure_cookies=tls is not None,
    )
    runner = web.AppRunner(build_app(parts), access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
    try:
        await hub.start(ctx.bus)
        await runner.setup()
        site = web.TCPSite(runner, web_settings.host, web_settings.port, ssl_context=tls)
        await site.start()
    except BaseException:
        await hub.stop()
        await runner.cleanup()
        await platform.close()
        raise
    port = _bound_port(runner, web_settings.port)
    log.info(
        "console.serving",
        address=web_settings.address,
        port=port,
        tls=tls is not None,
        gateway=web_settings.gateway,
    )
    return RunningConsole(name="web", port=port, runner=runner, hub=hub, platform=platform)


async def _owner(platform: Platform, job_id: str, token: str | None) -> str:
    _, owner = await platform.job_status(job_id, token)
    return owner


def _bound_port(runner: web.AppRunner, asked: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return asked
