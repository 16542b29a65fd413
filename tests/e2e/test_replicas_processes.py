"""Every service with two replicas in processes of their own, one replica SIGKILLed mid-job.

One platform for the module (`aorta.testing.split`): two replicas each of the gateway,
pipelines, payloads, models and scheduler (one leading, one standing by), and the node's
monitor. Each case runs the three-operator job of `test_jobs_processes` through one gateway,
SIGKILLs one replica of one service while the middle operator runs (the scheduler's leader for
the scheduler), and reads the outcome through the other gateway: HEALTHY, every output, each
operator completed exactly once. Each service is killed once, so it still has its second
replica when its turn comes; the cases share the platform to stay CI-sized.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aorta.settings import Settings
from aorta.testing.split import SplitPlatform, split_platform
from tests.e2e.test_jobs_processes import (
    OPERATOR,
    SCHEDULER_ENV,
    check_outcome,
    client,
    definition,
    leader_pid,
    wait_for_file,
)

COUNTS = {"pipelines": 2, "payloads": 2, "models": 2, "scheduler": 2, "monitor": 1, "gateway": 2}
KILLED = ("pipelines", "payloads", "models", "scheduler", "gateway")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SplitPlatform]:
    folder = tmp_path_factory.mktemp("replicas")
    environ = {**SCHEDULER_ENV, "AORTA_MODELS_REPLICA_TTL": "1.5"}
    with split_platform(folder, COUNTS, environ) as started:
        yield started


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("service", KILLED)
async def test_killing_one_replica_mid_job_changes_no_outcome(
    platform: SplitPlatform, service: str, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    marks.chmod(0o777)  # the operators' user, not the platform's, writes here
    script = tmp_path / "operator.py"
    script.write_text(OPERATOR)
    replicas = platform.of(service)
    assert len(replicas) == 2, f"{service} should have two live replicas"
    submit_to, read_from = platform.gateways
    if service == "gateway":
        # The client reads through the gateway that stays.
        submit_to, read_from = read_from, submit_to
    async with client(int(submit_to.rsplit(":", 1)[1])) as api:
        job_id, _ = await api.submit(definition(script, marks))
    await wait_for_file(marks / "slow.pid")
    if service == "scheduler":
        leader = await leader_pid(Settings.from_env(platform.environ))
        victim = next(r for r in replicas if r.process.pid == leader)
    else:
        victim = replicas[0] if service != "gateway" else replicas[1]
    victim.kill()
    async with client(int(read_from.rsplit(":", 1)[1])) as api:
        status = await api.stopped(job_id)
    check_outcome(status, marks, Path(platform.environ["AORTA_DATA_DIR"]))
    assert len(platform.of(service)) == 1
