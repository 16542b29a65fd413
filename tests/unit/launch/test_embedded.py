"""`aorta up`'s safe defaults: loopback, a private data dir, the admin token and TLS made on
first start, and start-up lines that say how to reach the platform without printing secrets."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from click.testing import CliRunner

from aorta import __version__
from aorta.auth.principal import Role
from aorta.auth.tokens import TokenFile
from aorta.settings import Settings
from aorta_services.launch.embedded import (
    Access,
    EmbeddedOptions,
    auto_tls,
    banner,
    embedded_settings,
    metrics_url,
    prepare_access,
    private_data_dir,
)
from aorta_services.launch.main import cli

NATS = "nats://gateway:s3cret-bus@127.0.0.1:4222"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_default_listens_on_loopback_without_auth(tmp_path: Path) -> None:
    settings = embedded_settings(Settings.from_env({}), EmbeddedOptions(tmp_path), NATS)
    assert settings.grpc_address == "127.0.0.1:30031"
    assert not settings.auth_enabled and not settings.gateway_tls and not settings.insecure


def test_auth_and_tls_auto_reach_the_settings(tmp_path: Path) -> None:
    options = EmbeddedOptions(tmp_path, listen="::", auth=True, tls_auto=True, grpc_port=9)
    tls = auto_tls(options)
    settings = embedded_settings(Settings.from_env({}), options, NATS, tls)
    assert settings.grpc_address == "[::]:9"
    assert settings.auth_enabled
    assert settings.auth_tokens_file == str(tmp_path.resolve() / "tokens.yaml")
    assert tls is not None and settings.gateway_tls_cert == str(tls.server_cert)
    assert _mode(Path(settings.gateway_tls_key)) == 0o600


def test_a_tokens_file_setting_wins_over_the_data_dirs(tmp_path: Path) -> None:
    base = Settings.from_env({"AORTA_AUTH_TOKENS_FILE": "/etc/aorta/tokens.yaml"})
    settings = embedded_settings(base, EmbeddedOptions(tmp_path, auth=True), NATS)
    assert settings.auth_tokens_file == "/etc/aorta/tokens.yaml"


def test_first_start_writes_a_working_admin_token_once(tmp_path: Path) -> None:
    options = EmbeddedOptions(tmp_path, auth=True)
    settings = embedded_settings(Settings.from_env({}), options, NATS)
    access = prepare_access(settings, options, None)
    assert access.admin_token == tmp_path.resolve() / "admin.token"
    token = access.admin_token.read_text().strip()
    assert _mode(access.admin_token) == 0o600
    principal = TokenFile(Path(settings.auth_tokens_file)).lookup(token)
    assert principal is not None and principal.roles == frozenset({Role.ADMIN})
    prepare_access(settings, options, None)
    assert access.admin_token.read_text().strip() == token


def test_an_old_data_dir_becomes_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "blobs").mkdir(parents=True)
    (data / "state.db").write_text("state")
    (data / "blobs" / "scan.dcm").write_text("patient")
    os.chmod(data, 0o755)
    os.chmod(data / "blobs", 0o755)
    os.chmod(data / "state.db", 0o644)
    private_data_dir(data)
    assert _mode(data) == 0o700
    assert _mode(data / "blobs") == 0o700
    assert _mode(data / "state.db") == 0o600
    assert _mode(data / "blobs" / "scan.dcm") == 0o600


def test_the_banner_says_how_to_connect_and_hides_the_bus_password(tmp_path: Path) -> None:
    options = EmbeddedOptions(tmp_path, auth=True, tls_auto=True, listen="0.0.0.0")
    tls = auto_tls(options)
    settings = embedded_settings(Settings.from_env({}), options, NATS, tls)
    access = prepare_access(settings, options, tls)
    text = banner(access, settings, 30031, NATS)
    assert "s3cret-bus" not in text and "nats://" not in text
    assert "AORTA_HOST" not in text  # the CLI's default address reaches it
    assert tls is not None and f"export AORTA_CA={tls.ca_cert}" in text
    assert tls.ca_fingerprint in text
    assert f"export AORTA_TOKEN_FILE={tmp_path.resolve() / 'admin.token'}" in text
    assert "TLS, tokens required" in text


def test_up_takes_listen_not_host() -> None:
    shown = CliRunner().invoke(cli, ["up", "--help"])
    assert shown.exit_code == 0
    for option in ("--listen", "--auth", "--insecure", "--tls", "--tls-client-ca"):
        assert option in shown.output
    assert "--host" not in shown.output


def test_up_refuses_half_a_certificate(tmp_path: Path) -> None:
    cert = tmp_path / "server.pem"
    cert.write_text("x")
    refused = CliRunner().invoke(cli, ["up", "--tls-cert", str(cert)])
    assert refused.exit_code == 2
    assert "--tls-cert and --tls-key go together" in refused.output


def test_the_banner_is_short_and_says_how_to_use_and_stop_the_platform(tmp_path: Path) -> None:
    settings = embedded_settings(Settings.from_env({}), EmbeddedOptions(tmp_path), NATS)
    log_file = tmp_path / "logs" / "aorta.log"
    access = Access("127.0.0.1:30031")
    scrape = metrics_url(settings, access, 30090)
    text = banner(access, settings, 30031, NATS, "why", log_file=log_file, metrics_url=scrape)
    assert text.splitlines() == [
        f"Aorta {__version__} is up: Clara API on 127.0.0.1:30031 (plain text, no authentication).",
        "  Metrics: http://127.0.0.1:30090/metrics",
        "  Why.",
        f"  Data in {tmp_path.resolve()}; detailed logs in {log_file}.",
        "  The CLI reaches it as is: try `aorta list jobs`.",
        "Press Ctrl-C to stop.",
    ]


def test_another_port_is_exported_for_the_cli(tmp_path: Path) -> None:
    options = EmbeddedOptions(tmp_path, grpc_port=0)
    settings = embedded_settings(Settings.from_env({}), options, NATS)
    text = banner(prepare_access(settings, options, None), settings, 41234, NATS)
    assert "  Point the CLI at it, then try `aorta list jobs`:" in text.splitlines()
    assert "    export AORTA_HOST=127.0.0.1:41234" in text.splitlines()


def test_the_banner_names_no_metrics_address_when_metrics_are_off(tmp_path: Path) -> None:
    off = Settings.from_env({"AORTA_METRICS": "off"})
    settings = embedded_settings(off, EmbeddedOptions(tmp_path), NATS)
    access = Access("127.0.0.1:30031")
    assert metrics_url(settings, access, 30090) == ""
    assert "Metrics" not in banner(access, settings, 30031, NATS)
