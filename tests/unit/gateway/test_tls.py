"""The gateway serves TLS when given a certificate, and with a client CA refuses clients that
present no certificate it signed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from aorta.bus.memory import MemoryBus
from aorta.runtime.service import service_context
from aorta.settings import Settings, SettingsError
from aorta_services.gateway import app as gateway_app
from tests.unit.gateway.certificates import Pki, make_pki
from tests.unit.gateway.door_harness import settings_for


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    folder = tmp_path / "pki"
    folder.mkdir()
    return make_pki(folder)


@asynccontextmanager
async def _serving(settings: Settings) -> AsyncIterator[int]:
    bus = MemoryBus(default_timeout=2.0)
    try:
        async with service_context(settings, bus) as context:
            running = await gateway_app.start(context, address="127.0.0.1:0")
            try:
                yield running.port
            finally:
                await running.stop(1.0)
    finally:
        await bus.close()


async def _health(channel: grpc.aio.Channel) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(), timeout=5
    )
    return int(reply.status)


def _tls_settings(tmp_path: Path, pki: Pki, *, client_ca: bool) -> Settings:
    environ = {
        "AORTA_GATEWAY_TLS_CERT": str(pki.server.cert_file),
        "AORTA_GATEWAY_TLS_KEY": str(pki.server.key_file),
    }
    if client_ca:
        environ["AORTA_GATEWAY_TLS_CLIENT_CA"] = str(pki.ca.cert_file)
    return settings_for(tmp_path, **environ)


async def test_tls_serves_clients_that_trust_the_ca_and_refuses_plain_text(
    tmp_path: Path, pki: Pki
) -> None:
    async with _serving(_tls_settings(tmp_path, pki, client_ca=False)) as port:
        credentials = grpc.ssl_channel_credentials(root_certificates=pki.ca.cert)
        async with grpc.aio.secure_channel(f"localhost:{port}", credentials) as channel:
            assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as plain:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _health(plain)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_mtls_refuses_a_client_without_a_certificate(tmp_path: Path, pki: Pki) -> None:
    async with _serving(_tls_settings(tmp_path, pki, client_ca=True)) as port:
        anonymous = grpc.ssl_channel_credentials(root_certificates=pki.ca.cert)
        async with grpc.aio.secure_channel(f"localhost:{port}", anonymous) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _health(channel)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        certified = grpc.ssl_channel_credentials(
            root_certificates=pki.ca.cert,
            private_key=pki.client.key,
            certificate_chain=pki.client.cert,
        )
        async with grpc.aio.secure_channel(f"localhost:{port}", certified) as channel:
            assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING


def test_a_certificate_without_its_key_is_a_settings_error(tmp_path: Path, pki: Pki) -> None:
    settings = settings_for(tmp_path, AORTA_GATEWAY_TLS_CERT=str(pki.server.cert_file))
    with pytest.raises(SettingsError, match="AORTA_GATEWAY_TLS_KEY"):
        gateway_app.server_credentials(settings)


def test_a_client_ca_without_tls_is_a_settings_error(tmp_path: Path, pki: Pki) -> None:
    settings = settings_for(tmp_path, AORTA_GATEWAY_TLS_CLIENT_CA=str(pki.ca.cert_file))
    with pytest.raises(SettingsError, match="AORTA_GATEWAY_TLS_CERT"):
        gateway_app.server_credentials(settings)


def test_an_unreadable_key_names_the_setting_not_its_content(tmp_path: Path, pki: Pki) -> None:
    settings = settings_for(
        tmp_path,
        AORTA_GATEWAY_TLS_CERT=str(pki.server.cert_file),
        AORTA_GATEWAY_TLS_KEY=str(tmp_path / "missing.key"),
    )
    with pytest.raises(SettingsError, match="AORTA_GATEWAY_TLS_KEY: cannot read"):
        gateway_app.server_credentials(settings)
