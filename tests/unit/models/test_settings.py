"""The models service's settings: defaults, parsing, and errors naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from aorta.settings import SettingsError
from aorta_services.models.settings import ModelsSettings


def test_defaults_follow_claras_triton_limits() -> None:
    settings = ModelsSettings.from_env({})
    assert settings.pool.models_per_server == 8
    assert (settings.pool.pool_size, settings.pool.idle_seconds) == (2, 600.0)
    assert settings.backend == "local" and settings.triton_home is None
    assert settings.limits.max_uncompressed_bytes == 16 * 1024**3


def test_every_variable_is_read() -> None:
    settings = ModelsSettings.from_env(
        {
            "AORTA_TRITON_MODELS_PER_SERVER": "3",
            "AORTA_TRITON_POOL_SIZE": "0",
            "AORTA_TRITON_IDLE_SECONDS": "1.5",
            "AORTA_TRITON_MAX_SERVERS": "4",
            "AORTA_TRITON_HOME": "/opt/tritonserver",
            "AORTA_TRITON_PYTHON_ENV": "/opt/models-env",
            "AORTA_TRITON_START_TIMEOUT": "5",
            "AORTA_TRITON_LOAD_TIMEOUT": "7",
            "AORTA_TRITON_STOP_GRACE": "2",
            "AORTA_MODELS_MAX_MEMBERS": "9",
            "AORTA_MODELS_MAX_UNCOMPRESSED_BYTES": "1024",
        }
    )
    assert (settings.pool.models_per_server, settings.pool.pool_size) == (3, 0)
    assert (settings.pool.idle_seconds, settings.pool.max_servers) == (1.5, 4)
    assert settings.triton_home == Path("/opt/tritonserver")
    assert settings.python_env == Path("/opt/models-env")
    assert (settings.start_timeout, settings.load_timeout, settings.stop_grace) == (5, 7, 2)
    assert (settings.limits.max_members, settings.limits.max_uncompressed_bytes) == (9, 1024)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AORTA_TRITON_MODELS_PER_SERVER", "0"),
        ("AORTA_TRITON_POOL_SIZE", "many"),
        ("AORTA_TRITON_BACKEND", "docker"),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        ModelsSettings.from_env({variable: value})
