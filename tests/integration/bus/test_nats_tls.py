"""TLS to the bus: a client given the CA by setting reaches a nats-server that serves TLS, as
its user; a client without TLS does not get in."""

from __future__ import annotations

from pathlib import Path

import pytest

from aorta.auth.tls import ensure_auto_tls
from aorta.bus.credentials import generate_credentials, tls_context
from aorta.bus.nats import NatsBus
from aorta.bus.nats_server import NatsServerProcess, ServerTls
from aorta.errors import Unavailable
from aorta.settings import Settings


async def test_a_client_with_the_ca_connects_over_tls_and_a_plain_one_does_not(
    tmp_path: Path,
) -> None:
    files = ensure_auto_tls(tmp_path / "tls", ["127.0.0.1"])
    credentials = generate_credentials(["gateway"])
    tls = ServerTls(files.server_cert, files.server_key)
    async with NatsServerProcess(tmp_path / "nats", users=credentials, tls=tls) as server:
        settings = Settings.from_env({"AORTA_NATS_TLS_CA": str(files.ca_cert)})
        context = tls_context(settings)
        assert context is not None
        bus = await NatsBus.connect(
            server.url,
            name="tls",
            default_timeout=2.0,
            credentials=credentials["gateway"],
            tls=context,
        )
        try:
            await bus.publish("aorta.audit.test.tls", b"over tls")
        finally:
            await bus.close()
        with pytest.raises(Unavailable):
            await NatsBus.connect(
                server.url,
                name="plain",
                default_timeout=1.0,
                connect_timeout=2.0,
                credentials=credentials["gateway"],
            )
