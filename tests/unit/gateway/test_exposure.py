"""Nothing listens beyond loopback without authentication, unless the risk was accepted."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from aorta.auth.exposure import bind_host, exposure_warnings, is_loopback
from aorta.bus.memory import MemoryBus
from aorta.runtime.service import service_context
from aorta.settings import SettingsError
from aorta_services.gateway import app as gateway_app
from tests.unit.gateway.door_harness import settings_for


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1:30031",
        "127.8.9.10:1",
        "localhost:30031",
        "LOCALHOST:1",
        "[::1]:30031",
        "unix:/run/aorta/gateway.sock",
    ],
)
def test_loopback_addresses(address: str) -> None:
    assert is_loopback(address)


@pytest.mark.parametrize(
    "address",
    ["0.0.0.0:30031", "[::]:30031", "10.0.0.7:30031", "gateway.example.org:443", "[fe80::1]:1"],
)
def test_addresses_beyond_loopback(address: str) -> None:
    assert not is_loopback(address)


def test_bind_host_reads_both_address_forms() -> None:
    assert bind_host("[::1]:50051") == "::1"
    assert bind_host("0.0.0.0:50051") == "0.0.0.0"
    assert bind_host("localhost") == "localhost"


def test_loopback_needs_nothing(tmp_path: Path) -> None:
    assert exposure_warnings(settings_for(tmp_path), "127.0.0.1:30031") == ()


def test_beyond_loopback_without_auth_is_refused_with_the_ways_out(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as refused:
        exposure_warnings(settings_for(tmp_path), "0.0.0.0:30031")
    message = str(refused.value)
    for way_out in ("aorta up --auth", "AORTA_AUTH_TOKENS_FILE", "AORTA_OIDC_ISSUER"):
        assert way_out in message
    assert "--insecure" in message and "AORTA_INSECURE=true" in message


def test_insecure_accepts_the_risk_with_a_warning(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, AORTA_INSECURE="true")
    warnings = exposure_warnings(settings, "0.0.0.0:30031")
    assert [event for event, _ in warnings] == ["gateway.insecure"]


def test_auth_without_tls_beyond_loopback_warns_of_clear_text_tokens(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, AORTA_AUTH_TOKENS_FILE=str(tmp_path / "tokens.yaml"))
    warnings = exposure_warnings(settings, "10.0.0.7:30031")
    assert [event for event, _ in warnings] == ["gateway.cleartext_tokens"]
    with_tls = settings.with_changes(gateway_tls_cert="server.crt", gateway_tls_key="server.key")
    assert exposure_warnings(with_tls, "10.0.0.7:30031") == ()


async def test_the_gateway_refuses_to_start_on_every_interface_without_auth(
    tmp_path: Path,
) -> None:
    bus = MemoryBus(default_timeout=2.0)
    try:
        async with service_context(settings_for(tmp_path), bus) as context:
            with pytest.raises(SettingsError, match="beyond loopback"):
                await gateway_app.start(context, address="0.0.0.0:0")
    finally:
        await bus.close()


async def test_an_insecure_gateway_starts_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bus = MemoryBus(default_timeout=2.0)
    settings = settings_for(tmp_path, AORTA_INSECURE="true")
    try:
        async with service_context(settings, bus) as context:
            running = await gateway_app.start(context, address="0.0.0.0:0")
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                    await channel.channel_ready()
            finally:
                await running.stop(1.0)
    finally:
        await bus.close()
    captured = capsys.readouterr()
    assert "gateway.insecure" in captured.out + captured.err
