"""How an exited container becomes an outcome: out of memory, exit codes, stops."""

from __future__ import annotations

from typing import Any

from aorta.executors.container.devices import EngineKind, engine_kind
from aorta.executors.container.outcome import (
    failure,
    finished_at,
    has_exited,
    has_started,
    memory_limit,
    ran_past,
    started_at,
)
from aorta.executors.port import RunReason


def _container(
    code: int, *, oom: bool = False, memory: int = 64 << 20, **state: Any
) -> dict[str, Any]:
    return {
        "State": {"Status": "exited", "ExitCode": code, "OOMKilled": oom, **state},
        "HostConfig": {"Memory": memory},
    }


def test_exit_zero_has_no_outcome_before_its_outputs_are_stored() -> None:
    assert failure(_container(0), "r", "op", stopped=None, timeout=10) is None


def test_the_oom_killer_faults_the_run_with_its_limit() -> None:
    outcome = failure(_container(137, oom=True), "r", "op", stopped=None, timeout=10)
    assert outcome is not None and outcome.reason is RunReason.FAILED
    assert "out of memory (limit 64 MiB)" in outcome.message
    assert outcome.exit_code == 137


def test_a_sigkill_nobody_sent_under_a_memory_limit_is_out_of_memory() -> None:
    outcome = failure(_container(137), "r", "op", stopped=None, timeout=10)
    assert outcome is not None and "out of memory (limit 64 MiB)" in outcome.message


def test_a_non_zero_exit_quotes_its_code_and_log() -> None:
    outcome = failure(_container(3), "r", "op", stopped=None, timeout=10, tail="boom")
    assert outcome is not None and outcome.reason is RunReason.FAILED
    assert outcome.message.startswith("operator op failed: exit code 3")
    assert outcome.message.endswith("boom")


def test_stops_by_the_executor_say_why() -> None:
    timeout = failure(_container(143), "r", "op", stopped=RunReason.TIMEOUT, timeout=2.5)
    assert timeout is not None and timeout.reason is RunReason.TIMEOUT
    assert "timeout of 2.5 s" in timeout.message
    cancelled = failure(_container(137), "r", "op", stopped=RunReason.CANCELLED, timeout=9)
    assert cancelled is not None and cancelled.reason is RunReason.CANCELLED


def test_container_states() -> None:
    created = {"State": {"Status": "created", "StartedAt": "0001-01-01T00:00:00Z"}}
    assert not has_started(created) and not has_exited(created)
    running = {"State": {"Status": "running", "Running": True}}
    assert has_started(running) and not has_exited(running)
    assert memory_limit({"HostConfig": {"Memory": 0}}) == "none"
    assert memory_limit({"HostConfig": {"Memory": 1000}}) == "1000 bytes"


def test_start_times_with_nanoseconds_and_zones() -> None:
    docker = started_at({"State": {"StartedAt": "2026-12-06T13:00:01.123456789Z"}})
    podman = started_at({"State": {"StartedAt": "2026-12-06T13:00:01.5+00:00"}})
    assert docker is not None and docker.microsecond == 123456
    assert podman is not None and podman.microsecond == 500000
    assert started_at({"State": {"StartedAt": "0001-01-01T00:00:00Z"}}) is None


def test_an_exit_time_only_once_the_container_exited() -> None:
    exited = {"State": {"Status": "exited", "FinishedAt": "2026-12-06T13:00:09.5Z"}}
    finished = finished_at(exited)
    assert finished is not None and finished.timestamp() % 60 == 9.5
    running = {"State": {"Status": "running", "FinishedAt": "0001-01-01T00:00:00Z"}}
    assert finished_at(running) is None


def test_the_engine_is_named_by_its_version() -> None:
    podman = {"Components": [{"Name": "Podman Engine", "Version": "4.3.1"}], "Version": "4.3.1"}
    docker = {"Components": [{"Name": "Engine", "Version": "27.1"}], "Version": "27.1"}
    assert engine_kind(podman) is EngineKind.PODMAN
    assert engine_kind(docker) is EngineKind.DOCKER
    assert engine_kind({}) is EngineKind.DOCKER


def test_a_container_that_ran_its_whole_timeout_and_failed_was_stopped_for_it() -> None:
    started, finished = "2026-12-06T13:00:00Z", "2026-12-06T13:00:31.2Z"
    assert ran_past(_container(143, StartedAt=started, FinishedAt=finished), 30)
    # it finished in time, its own way
    assert not ran_past(_container(0, StartedAt=started, FinishedAt=finished), 30)
    assert not ran_past(_container(143, StartedAt=started, FinishedAt=finished), 60)
    assert not ran_past(_container(143), 30)
