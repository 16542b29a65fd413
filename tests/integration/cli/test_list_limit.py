"""`aorta list jobs --limit N`: the N newest jobs, the rest of the stream left unread."""

from __future__ import annotations

from tests.integration.cli.cli_support import Aorta, Samples
from tests.integration.cli.test_habits import _job, _pipeline


def test_limit_keeps_the_newest_jobs(aorta: Aorta, samples: Samples) -> None:
    pipeline = _pipeline(aorta, samples)
    for name in ("one", "two", "three"):
        _job(aorta, pipeline, name)
    every = aorta("list", "jobs", "-q").stdout.splitlines()

    limited = aorta("list", "jobs", "--limit", "2", "-q")

    assert limited.exit_code == 0, limited.output
    assert limited.stdout.splitlines() == every[:2]
    assert aorta("list", "jobs", "--limit", "0", "-q").stdout.splitlines() == every
    assert aorta("list", "jobs", "--limit", "-1").exit_code == 2
