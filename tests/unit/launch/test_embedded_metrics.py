"""Where `aorta up` serves `/metrics`: on its listen address, on 30090 unless told, and not at
all with `--metrics-port 0`; only the default port may be skipped when taken."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from aorta.settings import Settings
from aorta_services.launch.embedded import METRICS_PORT, EmbeddedOptions, embedded_settings
from aorta_services.launch.main import cli

NATS = "nats://127.0.0.1:4222"


def test_the_metrics_port_defaults_to_30090_on_the_listen_address(tmp_path: Path) -> None:
    settings = embedded_settings(Settings.from_env({}), EmbeddedOptions(tmp_path), NATS)
    assert METRICS_PORT == 30090
    assert (settings.health_host, settings.health_port) == ("127.0.0.1", 30090)
    beyond = EmbeddedOptions(tmp_path, listen="0.0.0.0", auth=True, metrics_port=9100)
    settings = embedded_settings(Settings.from_env({}), beyond, NATS)
    assert (settings.health_host, settings.health_port) == ("0.0.0.0", 9100)
    off = embedded_settings(Settings.from_env({}), EmbeddedOptions(tmp_path, metrics_port=0), NATS)
    assert off.health_port == 0


def test_the_flag_is_documented_and_checked() -> None:
    shown = CliRunner().invoke(cli, ["up", "--help"])
    assert "--metrics-port" in shown.output and "30090" in shown.output
    refused = CliRunner().invoke(cli, ["up", "--metrics-port", "70000"])
    assert refused.exit_code == 2
