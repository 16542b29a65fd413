"""How an operator pod's status becomes a `RunOutcome`: pure, from the pod as the API shows it.

The operator container's terminated state decides: exit 0 and a push sidecar that also exited 0
(outputs and log stored) is COMPLETED; OOMKilled and other non-zero exits are FAILED with a
message for people; a pod the kubelet ended for its `activeDeadlineSeconds` (`DeadlineExceeded`)
is TIMEOUT; an init container that could not fetch the inputs, an image that cannot be pulled or
a container the runtime cannot create is START_FAILED. A pod that is still pending or running
has no outcome yet (`None`), including one that waits for a node (the cluster may grow).

`pod_times` reads a run's stages from the same status: the kubelet's start and finish times of
the fetch init container, the operator container and the push sidecar (to the second).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from aorta.executors.kubernetes.pods import (
    FETCH_CONTAINER,
    OPERATOR_CONTAINER,
    PUSH_CONTAINER,
    TIMEOUT_ANNOTATION,
    Json,
)
from aorta.executors.port import RunOutcome, RunReason, RunTimes

TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})

# Waiting reasons after which the kubelet will not start the container by itself (image pull
# back-off means the pull has already failed and been retried).
START_FAILURES = frozenset(
    {
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
_TAIL_LINES = 10


def is_finished(pod: Json) -> bool:
    """Whether the pod's containers have all stopped (phase Succeeded or Failed)."""
    return _status(pod).get("phase") in TERMINAL_PHASES


def pod_outcome(pod: Json | None, run_id: str, *, cancelled: bool) -> RunOutcome | None:
    """The run's outcome from its pod (`None` when the pod no longer exists), or `None` while
    it is not decided. `cancelled`: the executor asked for the pod's deletion."""
    if pod is None:
        if cancelled:
            return RunOutcome(run_id, RunReason.CANCELLED, message="cancelled")
        return RunOutcome(run_id, RunReason.LOST, message="the pod was deleted outside Aorta")
    status = _status(pod)
    if cancelled:
        return (
            RunOutcome(run_id, RunReason.CANCELLED, message="cancelled")
            if status.get("phase") in TERMINAL_PHASES
            else None
        )
    if status.get("phase") == "Failed" and status.get("reason") == "DeadlineExceeded":
        seconds = (pod.get("metadata") or {}).get("annotations", {}).get(TIMEOUT_ANNOTATION, "?")
        operator = _terminated(status.get("containerStatuses"), OPERATOR_CONTAINER) or {}
        code = operator.get("exitCode")
        return RunOutcome(
            run_id,
            RunReason.TIMEOUT,
            exit_code=None if code is None else int(code),
            message=f"ran past its timeout of {seconds} s and was stopped",
        )
    start_failure = _start_failure(pod, run_id)
    if start_failure is not None:
        return start_failure
    if status.get("phase") not in TERMINAL_PHASES:
        return None
    return _finished(pod, run_id)


def _finished(pod: Json, run_id: str) -> RunOutcome:
    status = _status(pod)
    operator = _terminated(status.get("containerStatuses"), OPERATOR_CONTAINER)
    if operator is None:
        why = " ".join(filter(None, (status.get("reason"), status.get("message"))))
        return RunOutcome(
            run_id, RunReason.FAILED, message=f"the pod failed before the operator ran: {why}"
        )
    code = int(operator.get("exitCode", -1))
    if operator.get("reason") == "OOMKilled":
        limit = _memory_limit(pod)
        return RunOutcome(
            run_id,
            RunReason.FAILED,
            exit_code=code,
            message=f"ran out of memory: it went over its limit of {limit} and was killed "
            "(OOMKilled); raise its `memory` request",
        )
    if code != 0:
        return RunOutcome(
            run_id,
            RunReason.FAILED,
            exit_code=code,
            message=_with_tail(f"exited with code {code}", operator.get("message")),
        )
    push = _terminated(status.get("containerStatuses"), PUSH_CONTAINER)
    if push is None or int(push.get("exitCode", -1)) != 0:
        detail = push.get("message") if push else "the push sidecar did not finish"
        return RunOutcome(
            run_id,
            RunReason.FAILED,
            exit_code=0,
            message=_with_tail("exited 0, but its outputs could not be stored", detail),
        )
    return RunOutcome(run_id, RunReason.COMPLETED, exit_code=0, message="exited with code 0")


def _start_failure(pod: Json, run_id: str) -> RunOutcome | None:
    status = _status(pod)
    fetch = _terminated(status.get("initContainerStatuses"), FETCH_CONTAINER)
    if fetch is not None and int(fetch.get("exitCode", -1)) != 0:
        return RunOutcome(
            run_id,
            RunReason.START_FAILED,
            message=_with_tail("its inputs could not be fetched", fetch.get("message")),
        )
    for container in (
        *(status.get("initContainerStatuses") or ()),
        *(status.get("containerStatuses") or ()),
    ):
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in START_FAILURES:
            what = f"container {container.get('name')!r} (image {container.get('image')!r})"
            return RunOutcome(
                run_id,
                RunReason.START_FAILED,
                message=f"{what} could not start: {waiting['reason']}: "
                f"{waiting.get('message', '')}".rstrip(": "),
            )
    return None


def pod_times(pod: Json) -> RunTimes:
    """When the run passed each stage, as the pod's container statuses say: staging from the
    fetch container's start, running and exited from the operator container's, stored at the
    push sidecar's end. The kubelet reports whole seconds, so short stages read as 0 s."""
    status = _status(pod)
    fetch = _state(status.get("initContainerStatuses"), FETCH_CONTAINER)
    operator = _state(status.get("containerStatuses"), OPERATOR_CONTAINER)
    push = _state(status.get("containerStatuses"), PUSH_CONTAINER)
    return RunTimes(
        staging=_instant(fetch, "startedAt"),
        running=_instant(operator, "startedAt"),
        exited=_instant(operator, "finishedAt"),
        stored=_instant(push, "finishedAt"),
    )


def _state(statuses: Iterable[Any] | None, name: str) -> Json:
    """The container's current state (`running` or `terminated`, merged), {} when none."""
    for container in statuses or ():
        if container.get("name") == name:
            state = container.get("state") or {}
            merged: Json = {**(state.get("running") or {}), **(state.get("terminated") or {})}
            return merged
    return {}


def _instant(state: Json, field: str) -> float | None:
    value = state.get(field)
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _status(pod: Json) -> Json:
    status: Json = pod.get("status") or {}
    return status


def _terminated(statuses: Iterable[Any] | None, name: str) -> Json | None:
    for container in statuses or ():
        if container.get("name") == name:
            terminated: Json | None = (container.get("state") or {}).get("terminated")
            return terminated
    return None


def _memory_limit(pod: Json) -> str:
    for container in (pod.get("spec") or {}).get("containers") or ():
        if container.get("name") == OPERATOR_CONTAINER:
            return str(container.get("resources", {}).get("limits", {}).get("memory", "?"))
    return "?"


def _with_tail(summary: str, message: object) -> str:
    lines = str(message or "").rstrip().splitlines()[-_TAIL_LINES:]
    return "\n".join([summary, *lines]) if lines else summary
