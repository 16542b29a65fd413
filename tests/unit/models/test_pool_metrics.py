"""The Triton pool's metrics follow its servers: how many in each state, how many models they
hold, and how long each acquire took, cold (a server started) or warm (one reused)."""

from __future__ import annotations

from prometheus_client import REGISTRY

from aorta_services.models.pool import TritonPool
from aorta_services.models.settings import PoolSettings
from tests.unit.models.model_fakes import FakeBackend, FakeSource

JOB_A = "a" * 32
JOB_B = "b" * 32


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def servers() -> dict[str, float]:
    return {
        state: value("aorta_triton_servers", state=state) for state in ("starting", "held", "idle")
    }


async def test_servers_models_and_acquires_are_counted_as_they_change() -> None:
    pool = TritonPool(FakeBackend(), FakeSource(), PoolSettings())
    cold = value("aorta_triton_acquire_seconds_count", warm="false")
    warm = value("aorta_triton_acquire_seconds_count", warm="true")

    await pool.acquire(JOB_A, {"seg": "r1", "lung": "r1"})
    assert servers() == {"starting": 0, "held": 1, "idle": 0}
    assert value("aorta_models_loaded") == 2
    assert value("aorta_triton_acquire_seconds_count", warm="false") == cold + 1

    await pool.release(JOB_A)
    assert servers() == {"starting": 0, "held": 0, "idle": 1}

    await pool.acquire(JOB_B, {"seg": "r1"})
    assert value("aorta_triton_acquire_seconds_count", warm="true") == warm + 1
    assert servers() == {"starting": 0, "held": 1, "idle": 0}

    await pool.close()
    assert servers() == {"starting": 0, "held": 0, "idle": 0}
    assert value("aorta_models_loaded") == 0
