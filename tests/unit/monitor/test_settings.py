"""MonitorSettings from an environment mapping."""

from __future__ import annotations

import pytest

from aorta.settings import SettingsError
from aorta_services.monitor.settings import MonitorSettings


def test_defaults_are_one_second_and_the_host_name() -> None:
    settings = MonitorSettings.from_env({}, rpc_timeout=30.0, hostname=lambda: "gpu-host-7")
    assert settings == MonitorSettings(interval=1.0, node_id="gpu-host-7")


def test_variables_override_the_defaults() -> None:
    environ = {"AORTA_MONITOR_INTERVAL": "0.25", "AORTA_NODE_ID": "node-b"}
    settings = MonitorSettings.from_env(environ, rpc_timeout=30.0, hostname=lambda: "ignored")
    assert settings == MonitorSettings(interval=0.25, node_id="node-b")


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("fast", "AORTA_MONITOR_INTERVAL='fast' is not a number"),
        ("0.01", "AORTA_MONITOR_INTERVAL=0.01 is below the minimum 0.1"),
        ("30", "AORTA_MONITOR_INTERVAL=30 must be below AORTA_RPC_TIMEOUT=30"),
    ],
)
def test_a_bad_interval_is_refused_naming_the_variable(value: str, complaint: str) -> None:
    with pytest.raises(SettingsError, match=complaint):
        MonitorSettings.from_env({"AORTA_MONITOR_INTERVAL": value}, rpc_timeout=30.0)
