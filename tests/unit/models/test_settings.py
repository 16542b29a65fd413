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


def test_triton_gets_the_schedulers_gpus_unless_told_otherwise() -> None:
    assert ModelsSettings.from_env({}).pool.gpus is None
    assert ModelsSettings.from_env({"AORTA_SCHEDULER_GPUS": "0,3"}).pool.gpus == (0, 3)
    chosen = {"AORTA_SCHEDULER_GPUS": "4", "AORTA_TRITON_GPUS": "2,"}
    assert ModelsSettings.from_env(chosen).pool.gpus == (2,)
    assert ModelsSettings.from_env({"AORTA_TRITON_GPUS": "2"}).pool.gpus == (0, 1)
    assert ModelsSettings.from_env({"AORTA_TRITON_GPUS": "none"}).pool.gpus == ()
    assert ModelsSettings.from_env({}).pool.gpus_per_server == 1
    assert ModelsSettings.from_env({"AORTA_TRITON_GPUS_PER_SERVER": "0"}).pool.gpus_per_server == 0


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"AORTA_TRITON_GPUS": "two"}, "AORTA_TRITON_GPUS='two' is neither"),
        ({"AORTA_TRITON_GPUS": "1,1"}, "names a device twice"),
        ({"AORTA_SCHEDULER_GPUS": "1,x"}, "AORTA_SCHEDULER_GPUS='1,x' is not a list"),
        ({"AORTA_TRITON_GPUS_PER_SERVER": "-1"}, "AORTA_TRITON_GPUS_PER_SERVER"),
        ({"AORTA_TRITON_CUDA_MEMORY_POOL_BYTES": "lots"}, "AORTA_TRITON_CUDA_MEMORY_POOL_BYTES"),
    ],
)
def test_a_bad_gpu_setting_names_its_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        ModelsSettings.from_env(environ)


def test_memory_pools_default_to_tritons_own_sizes() -> None:
    pools = ModelsSettings.from_env({}).memory_pools
    assert (pools.cuda_bytes, pools.pinned_bytes) == (64 * 1024**2, 256 * 1024**2)
    chosen = ModelsSettings.from_env(
        {
            "AORTA_TRITON_CUDA_MEMORY_POOL_BYTES": "1073741824",
            "AORTA_TRITON_PINNED_MEMORY_POOL_BYTES": "0",
        }
    ).memory_pools
    assert (chosen.cuda_bytes, chosen.pinned_bytes) == (1024**3, 0)


def test_a_triton_image_runs_the_servers_in_containers() -> None:
    image = "nvcr.io/nvidia/tritonserver:24.08-py3"
    settings = ModelsSettings.from_env({"AORTA_TRITON_IMAGE": image})
    assert (settings.backend, settings.image) == ("container", image)
    explicit = {"AORTA_TRITON_BACKEND": "container", "AORTA_TRITON_IMAGE": image}
    assert ModelsSettings.from_env(explicit).backend == "container"
    kubernetes = {"AORTA_TRITON_BACKEND": "kubernetes", "AORTA_TRITON_IMAGE": image}
    assert ModelsSettings.from_env(kubernetes).backend == "kubernetes"
    with pytest.raises(SettingsError, match="needs AORTA_TRITON_IMAGE"):
        ModelsSettings.from_env({"AORTA_TRITON_BACKEND": "container"})
