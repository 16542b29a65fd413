"""Bus credentials: random, never shown, read from settings in pairs; TLS only when asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from aorta.bus.credentials import (
    BusCredentials,
    generate_credentials,
    settings_credentials,
    tls_context,
)
from aorta.settings import Settings, SettingsError


def settings(**environ: str) -> Settings:
    return Settings.from_env(environ)


def test_generated_passwords_are_long_distinct_and_hidden() -> None:
    made = generate_credentials(["gateway", "events"])
    assert [c.user for c in made.values()] == ["gateway", "events"]
    assert made["gateway"].password != made["events"].password
    assert all(len(c.password) >= 40 for c in made.values())
    assert made["gateway"].password not in repr(made)


def test_the_settings_name_a_user_with_its_password_or_none() -> None:
    assert settings_credentials(settings()) is None
    found = settings_credentials(
        settings(AORTA_NATS_USER="pipelines", AORTA_NATS_PASSWORD="hunter22")
    )
    assert found == BusCredentials("pipelines", "hunter22")
    with pytest.raises(SettingsError, match="AORTA_NATS_PASSWORD is not"):
        settings_credentials(settings(AORTA_NATS_USER="pipelines"))
    with pytest.raises(SettingsError, match="AORTA_NATS_USER is not") as refused:
        settings_credentials(settings(AORTA_NATS_PASSWORD="hunter22"))
    assert "hunter22" not in str(refused.value)


def test_tls_only_when_a_setting_asks_for_it(tmp_path: Path) -> None:
    assert tls_context(settings()) is None
    with pytest.raises(SettingsError, match="go together"):
        tls_context(settings(AORTA_NATS_TLS_CERT=str(tmp_path / "client.pem")))
    with pytest.raises(SettingsError, match="cannot be read"):
        tls_context(settings(AORTA_NATS_TLS_CA=str(tmp_path / "missing-ca.pem")))
