"""The console's settings: where it listens, which gateway it calls and how."""

from __future__ import annotations

from pathlib import Path

import pytest

from aorta.auth.exposure import exposure_warnings
from aorta.settings import Settings, SettingsError
from aorta_services.web.app import gateway_channel, server_tls
from aorta_services.web.settings import WebSettings, local_gateway


def _platform(tmp_path: Path, **environ: str) -> Settings:
    return Settings.from_env({"AORTA_DATA_DIR": str(tmp_path), **environ})


@pytest.mark.parametrize(
    ("bound", "called"),
    [
        ("0.0.0.0:30031", "127.0.0.1:30031"),
        ("[::]:1", "127.0.0.1:1"),
        ("10.1.2.3:30031", "10.1.2.3:30031"),
    ],
)
def test_a_wildcard_gateway_is_called_on_loopback(bound: str, called: str) -> None:
    assert local_gateway(bound) == called


def test_defaults_follow_the_gateway(tmp_path: Path) -> None:
    platform = _platform(tmp_path, AORTA_GRPC_ADDRESS="0.0.0.0:40000")
    settings = WebSettings.from_env({}, platform)
    assert (settings.address, settings.port, settings.loopback) == ("127.0.0.1:30080", 30080, True)
    assert settings.gateway == "127.0.0.1:40000"
    assert settings.max_upload_bytes == 4096 << 20
    assert settings.tls_cert is None


@pytest.mark.parametrize("address", ["nowhere", "host:port", "127.0.0.1:70000"])
def test_an_address_that_is_not_host_and_port_is_refused(tmp_path: Path, address: str) -> None:
    with pytest.raises(SettingsError, match="AORTA_WEB_ADDRESS"):
        WebSettings.from_env({"AORTA_WEB_ADDRESS": address}, _platform(tmp_path))


def test_beyond_loopback_without_authentication_the_console_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"the console would listen on 0\.0\.0\.0:30080"):
        exposure_warnings(_platform(tmp_path), "0.0.0.0:30080", door="console")
    secured = _platform(tmp_path, AORTA_AUTH="true")
    warnings = exposure_warnings(secured, "0.0.0.0:30080", door="console")
    assert [event for event, _ in warnings] == ["console.cleartext_tokens"]


async def test_tokens_go_to_a_gateway_beyond_loopback_only_over_tls_or_when_trusted(
    tmp_path: Path,
) -> None:
    platform = _platform(tmp_path)
    remote = {"AORTA_WEB_GATEWAY": "gateway.example.org:50051"}
    with pytest.raises(SettingsError, match="AORTA_WEB_GATEWAY_CA"):
        gateway_channel(WebSettings.from_env(remote, platform), platform)
    trusted = WebSettings.from_env({**remote, "AORTA_WEB_GATEWAY_PLAINTEXT": "true"}, platform)
    await gateway_channel(trusted, platform).close()
    missing = WebSettings.from_env(
        {**remote, "AORTA_WEB_GATEWAY_CA": str(tmp_path / "no.pem")}, platform
    )
    with pytest.raises(SettingsError, match="cannot read"):
        gateway_channel(missing, platform)
    await gateway_channel(WebSettings.from_env({}, platform), platform).close()


def test_a_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    platform = _platform(tmp_path, AORTA_GATEWAY_TLS_CERT=str(tmp_path / "cert.pem"))
    with pytest.raises(SettingsError, match="AORTA_GATEWAY_TLS_KEY"):
        server_tls(WebSettings.from_env({}, platform))
