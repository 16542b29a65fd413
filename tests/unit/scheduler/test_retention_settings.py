"""The AORTA_RETENTION_* settings: nothing is removed unless one asks, and wrong values are
named."""

from __future__ import annotations

import pytest

from aorta.settings import SettingsError
from aorta_services.scheduler.domain.retention import RetentionPolicy
from aorta_services.scheduler.retention_settings import GIB, RetentionSettings


def test_by_default_nothing_is_removed() -> None:
    settings = RetentionSettings.from_env({})
    assert settings.policy == RetentionPolicy()
    assert not settings.policy.active
    assert settings.interval == 3600.0


def test_every_limit_is_read() -> None:
    settings = RetentionSettings.from_env(
        {
            "AORTA_RETENTION_JOBS_DAYS": "30",
            "AORTA_RETENTION_FAILED_JOBS_DAYS": "90",
            "AORTA_RETENTION_PAYLOADS_DAYS": "0.5",
            "AORTA_RETENTION_MAX_GIB": "1.5",
            "AORTA_RETENTION_INTERVAL": "60",
        }
    )
    assert settings.policy == RetentionPolicy(
        jobs_days=30, failed_jobs_days=90, payloads_days=0.5, max_bytes=int(1.5 * GIB)
    )
    assert settings.interval == 60.0


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("AORTA_RETENTION_JOBS_DAYS", "-1", "below the minimum"),
        ("AORTA_RETENTION_PAYLOADS_DAYS", "soon", "is not a number"),
        ("AORTA_RETENTION_MAX_GIB", "inf", "is not a finite number"),
        ("AORTA_RETENTION_INTERVAL", "0", "below the minimum"),
    ],
)
def test_a_wrong_value_is_named(name: str, value: str, says: str) -> None:
    with pytest.raises(SettingsError, match=f"{name}.*{says}"):
        RetentionSettings.from_env({name: value})
