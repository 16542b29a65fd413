"""From a pod's status to a run's outcome."""

from __future__ import annotations

from typing import Any

import pytest

from aorta.executors.kubernetes.outcome import pod_outcome, pod_times
from aorta.executors.kubernetes.pods import FETCH_CONTAINER, OPERATOR_CONTAINER, PUSH_CONTAINER
from aorta.executors.port import RunReason, RunTimes

Json = dict[str, Any]


def ended(code: int, reason: str = "", message: str = "") -> Json:
    state: Json = {"exitCode": code, "reason": reason or ("Completed" if code == 0 else "Error")}
    if message:
        state["message"] = message
    return {"terminated": state}


def pod(
    phase: str, *, operator: Json, push: Json, fetch: Json | None = None, **status: Any
) -> Json:
    return {
        "metadata": {"name": "p", "annotations": {"aorta/timeout": "30"}},
        "spec": {
            "containers": [
                {"name": OPERATOR_CONTAINER, "resources": {"limits": {"memory": "512Mi"}}}
            ]
        },
        "status": {
            "phase": phase,
            "initContainerStatuses": [{"name": FETCH_CONTAINER, "state": fetch or ended(0)}],
            "containerStatuses": [
                {"name": OPERATOR_CONTAINER, "image": "op:1", "state": operator},
                {"name": PUSH_CONTAINER, "image": "aorta:1", "state": push},
            ],
            **status,
        },
    }


RUNNING: Json = {"running": {"startedAt": "2026-01-01T00:00:00Z"}}


@pytest.mark.parametrize(
    ("given", "reason", "code", "words"),
    [
        (pod("Succeeded", operator=ended(0), push=ended(0)), RunReason.COMPLETED, 0, "code 0"),
        (pod("Running", operator=RUNNING, push=RUNNING), None, None, ""),
        (pod("Running", operator=ended(0), push=RUNNING), None, None, ""),
        (
            pod("Failed", operator=ended(2, message="Traceback\nValueError: bad"), push=ended(0)),
            RunReason.FAILED,
            2,
            "exited with code 2\nTraceback\nValueError: bad",
        ),
        (
            pod("Failed", operator=ended(137, "OOMKilled"), push=ended(0)),
            RunReason.FAILED,
            137,
            "512Mi and was killed (OOMKilled)",
        ),
        (
            pod("Failed", operator=ended(0), push=ended(1, message="aorta agent: S3 down")),
            RunReason.FAILED,
            0,
            "could not be stored\naorta agent: S3 down",
        ),
        (
            pod("Failed", operator=ended(137), push=ended(0), reason="DeadlineExceeded"),
            RunReason.TIMEOUT,
            137,
            "timeout of 30 s",
        ),
        (
            pod(
                "Failed",
                operator={"waiting": {"reason": "PodInitializing"}},
                push={"waiting": {"reason": "PodInitializing"}},
                fetch=ended(1, message="aorta agent: blob 'x' not found"),
            ),
            RunReason.START_FAILED,
            None,
            "inputs could not be fetched\naorta agent: blob 'x' not found",
        ),
        (
            pod(
                "Pending",
                operator={"waiting": {"reason": "InvalidImageName", "message": "bad ref"}},
                push=RUNNING,
            ),
            RunReason.START_FAILED,
            None,
            "'op:1') could not start: InvalidImageName: bad ref",
        ),
        (
            pod(
                "Failed",
                operator={"waiting": {"reason": "ContainerCreating"}},
                push={"waiting": {"reason": "ContainerCreating"}},
                reason="Evicted",
                message="The node was low on memory.",
            ),
            RunReason.FAILED,
            None,
            "before the operator ran: Evicted The node was low on memory.",
        ),
    ],
    ids=[
        "completed",
        "running",
        "pushing",
        "failed",
        "oom",
        "push-failed",
        "deadline",
        "fetch-failed",
        "bad-image",
        "evicted",
    ],
)
def test_outcomes(given: Json, reason: RunReason | None, code: int | None, words: str) -> None:
    outcome = pod_outcome(given, "r", cancelled=False)

    if reason is None:
        assert outcome is None
        return
    assert outcome is not None
    assert (outcome.reason, outcome.exit_code) == (reason, code)
    assert words in outcome.message


def test_a_cancelled_run_is_cancelled_once_its_pod_stopped_or_went() -> None:
    stopping = pod("Running", operator=RUNNING, push=RUNNING)
    stopped = pod("Failed", operator=ended(143), push=ended(0))

    assert pod_outcome(stopping, "r", cancelled=True) is None
    for gone in (stopped, None):
        outcome = pod_outcome(gone, "r", cancelled=True)
        assert outcome is not None and outcome.reason is RunReason.CANCELLED


def test_a_pod_gone_without_a_cancel_is_lost() -> None:
    outcome = pod_outcome(None, "r", cancelled=False)

    assert outcome is not None and outcome.reason is RunReason.LOST


def test_a_pods_container_times_are_the_runs_stages() -> None:
    def terminated(started: str, finished: str) -> Json:
        return {"terminated": {"exitCode": 0, "startedAt": started, "finishedAt": finished}}

    finished = pod(
        "Succeeded",
        fetch=terminated("2026-01-01T00:00:00Z", "2026-01-01T00:00:02Z"),
        operator=terminated("2026-01-01T00:00:03Z", "2026-01-01T00:00:10Z"),
        push=terminated("2026-01-01T00:00:03Z", "2026-01-01T00:00:12Z"),
    )
    base = 1767225600.0  # 2026-01-01T00:00:00Z
    assert pod_times(finished) == RunTimes(base, base + 3, base + 10, base + 12)
    going = pod("Running", fetch=ended(0), operator=RUNNING, push=RUNNING)
    assert pod_times(going) == RunTimes(None, base, None, None)
