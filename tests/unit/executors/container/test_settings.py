"""The container executor's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from aorta.executors.container.settings import ContainerSettings, PullPolicy
from aorta.settings import SettingsError


def test_defaults() -> None:
    settings = ContainerSettings.from_env({})
    assert settings == ContainerSettings()
    assert settings.pull_policy is PullPolicy.IF_NOT_PRESENT
    assert settings.auth_file is None and settings.instance == "aorta"


def test_every_setting_is_read() -> None:
    settings = ContainerSettings.from_env(
        {
            "AORTA_CONTAINER_PULL_POLICY": "Never",
            "AORTA_CONTAINER_AUTH_FILE": "/etc/aorta/config.json",
            "AORTA_CONTAINER_INSTANCE": "ward-7",
            "AORTA_CONTAINER_STOP_GRACE": "3",
            "AORTA_CONTAINER_SERVICE_NETWORK": "triton-net",
            "AORTA_CONTAINER_KEEP": "true",
            "AORTA_CONTAINER_LOG_FLUSH_INTERVAL": "0.5",
        }
    )
    assert settings == ContainerSettings(
        pull_policy=PullPolicy.NEVER,
        auth_file=Path("/etc/aorta/config.json"),
        instance="ward-7",
        stop_grace=3.0,
        service_network="triton-net",
        keep_containers=True,
        log_flush_interval=0.5,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AORTA_CONTAINER_PULL_POLICY", "Sometimes"),
        ("AORTA_CONTAINER_INSTANCE", "two words"),
        ("AORTA_CONTAINER_STOP_GRACE", "-1"),
    ],
)
def test_bad_values_name_their_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        ContainerSettings.from_env({name: value})
