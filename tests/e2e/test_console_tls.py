"""The console under `aorta up --tls auto`: HTTPS with the platform's own CA, a Secure session
cookie, and its calls to the gateway over TLS."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
import pytest

from aorta.testing.embedded import aorta_up
from aorta.testing.ports import free_ports
from tests.e2e.console_calls import CSRF, until

pytestmark = pytest.mark.timeout(300)


async def test_under_tls_the_console_serves_https_and_calls_the_gateway_over_tls(
    tmp_path: Path,
) -> None:
    data, (port, web) = tmp_path / "data", free_ports(2)
    args = ["--auth", "--tls", "auto", "--web-port", str(web), "--metrics-port", "0"]
    with aorta_up(data, port, args=args):
        trust = ssl.create_default_context(cafile=str(data / "tls" / "ca.pem"))
        token = {"token": (data / "admin.token").read_text().strip()}
        jar = aiohttp.CookieJar(unsafe=True)
        base = f"https://127.0.0.1:{web}"
        async with aiohttp.ClientSession(base, cookie_jar=jar) as session:

            async def answers() -> bool:
                try:
                    async with session.get("/api/openapi.json", ssl=trust) as served:
                        return served.status == 200
                except aiohttp.ClientConnectionError:
                    return False

            await until(answers)
            async with session.post("/api/session", json=token, headers=CSRF, ssl=trust) as signed:
                assert signed.status == 200 and (await signed.json())["role"] == "admin"
                assert "Secure" in signed.headers["Set-Cookie"]
            async with session.get("/api/jobs", ssl=trust) as listed:
                assert listed.status == 200
