"""The executor port: what the scheduler asks of whatever runs operators.

An executor runs one *operator run* (one attempt of one operator of one job) to completion: it
fetches the run's inputs from the blob store, starts the operator with the environment contract
(`aorta.operator_env`), captures its stdout and stderr into the run's log, and, only when the
operator exited 0, pushes its outputs to the blob store. Two implementations stand behind it:
local processes and Kubernetes pods; the scheduler never knows which.

Runs are identified by a deterministic `run_id`, so a scheduler that restarts after a crash can
ask the executor what is still running (`running`) and re-attach (`start` of a known run id is a
no-op, `wait` works for it) instead of starting a second copy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True)
class VolumeBinding:
    """One declared input or output of an operator.

    `entry_name` is the `clara_payload` entry name (`payload`, `upstream/output`,
    `this-operator/output`), `path` the path the definition declared (`/input`), and
    `blob_prefix` where the bytes come from (inputs) or go to (outputs); it ends with `/`.
    """

    entry_name: str
    path: str
    blob_prefix: str


@dataclass(frozen=True)
class Resources:
    """What the operator asked for; `gpu_devices` are the device indices it was given."""

    cpu: int = 2
    gpu: int = 0
    memory_mb: int = 1024
    gpu_devices: tuple[int, ...] = ()


@dataclass(frozen=True)
class ServiceMount:
    """A pipeline service's data folder as an operator run mounts it (a `connections.volume`
    entry): `source` is what the executor binds (a host folder, a volume or claim name),
    `path` where the operator sees it."""

    source: str
    path: str


@dataclass(frozen=True)
class OperatorRun:
    """Everything an executor needs to run one attempt of one operator."""

    run_id: str
    job_id: str
    job_name: str
    payload_id: str
    operator: str
    attempt: int
    image: str
    tag: str
    command: tuple[str, ...]
    inputs: tuple[VolumeBinding, ...]
    outputs: tuple[VolumeBinding, ...]
    resources: Resources
    timeout: float
    """Seconds the command may run, counted from its start (input fetching not included)."""
    log_key: str
    environment: Mapping[str, str] = field(default_factory=dict)
    """Operator `variables`, Triton URIs (`NVIDIA_TRITON_GRPCURI`, `NVIDIA_TRITON_HTTPURI`) and
    the connection variables of the operator's pipeline services;
    the executor adds the path and job variables. Any other name the environment contract
    reserves makes the run fail to start."""
    pull_secrets: tuple[str, ...] = ()
    """The pipeline's `pull-secrets`: image pull secrets for the operator's image, where the
    executor pulls images (Kubernetes adds them after `AORTA_K8S_PULL_SECRETS`)."""
    service_mounts: tuple[ServiceMount, ...] = ()
    """The data folders of the pipeline services the operator declares (`connections.volume`),
    each to be visible at its `path`; their connection variables are in `environment`. The
    local executor, which binds nothing, links each declared path's folder in the run's
    workspace to `source`."""


class RunReason(StrEnum):
    """Why a run ended."""

    COMPLETED = "completed"  # exit 0 and outputs stored
    FAILED = "failed"  # non-zero exit, or outputs could not be stored
    START_FAILED = "start_failed"  # missing executable, image, inputs...
    TIMEOUT = "timeout"  # ran past its timeout and was stopped
    CANCELLED = "cancelled"  # stopped on request
    LOST = "lost"  # the executor no longer knows this run (e.g. after a host restart)


@dataclass(frozen=True)
class RunTimes:
    """When a run passed each of its stages, in Unix seconds; None for a stage it never reached
    (or one the executor cannot see).

    - `staging`: the executor took the run in charge and began fetching its inputs;
    - `running`: the command started (inputs in place);
    - `exited`: the command exited (or was stopped);
    - `stored`: the run ended: outputs stored after an exit 0, and the final log pushed.

    The stages a timeline, a trace and the stage metrics show are the gaps between them:
    staging (`staging` to `running`), running (`running` to `exited`) and storing (`exited`
    to `stored`).
    """

    staging: float | None = None
    running: float | None = None
    exited: float | None = None
    stored: float | None = None


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended; `message` is for people (exit code and the last log lines).

    `exit_code` is the command's exit status when it ran, as a container runtime reports it:
    128 + N for a process killed by signal N (137 after SIGKILL). None when no command ran.
    `times` says when the run passed each stage, as far as the executor saw it.
    """

    run_id: str
    reason: RunReason
    exit_code: int | None = None
    message: str = ""
    times: RunTimes = field(default_factory=RunTimes)

    @property
    def succeeded(self) -> bool:
        return self.reason is RunReason.COMPLETED


@dataclass(frozen=True)
class KnownRuns:
    """What `Executor.running` answers: the runs a restarted scheduler must not start again.

    - `live`: runs not ended yet (preparing inputs, running, storing outputs), and those the
      backend still holds with an outcome no one has read (a pod or container that finished
      while no scheduler watched). One no job claims is a stray to stop.
    - `ended`: runs that ended and whose outcome is recorded (kept for a day, so a crash
      between the end and the scheduler's own record never runs the operator again). Nothing
      of them is left to stop: `wait` answers their outcome, and one no job claims is only an
      old record.

    `run_id in known` asks whether either lists it.
    """

    live: tuple[str, ...] = ()
    ended: tuple[str, ...] = ()

    def __contains__(self, run_id: object) -> bool:
        return run_id in self.live or run_id in self.ended


class Executor(Protocol):
    """Runs operator runs. Every method is safe to call again after a crash of the caller."""

    async def start(self, run: OperatorRun) -> None:
        """Starts `run` unless a run with its `run_id` is already known (then does nothing).

        Returns once the executor has taken the run in charge (the local executor: at once,
        preparing it in the background; Kubernetes: once the pod is created). A run that
        cannot start is not an error here: `wait` reports START_FAILED.
        """
        ...

    async def wait(self, run_id: str) -> RunOutcome:
        """Waits until the run ends and its outputs and final log are stored; LOST for an
        unknown run id. Cancelling the waiter does not affect the run."""
        ...

    async def cancel(self, run_id: str, *, grace: float) -> None:
        """Stops the run (SIGTERM or pod deletion), kills it after `grace` seconds, and returns
        once it ended (`wait` then says CANCELLED). Nothing happens for an unknown or ended run,
        nor for one whose command already exited: it ends as it would have (outputs stored
        after an exit 0)."""
        ...

    async def running(self) -> KnownRuns:
        """The runs this executor knows, for reconciliation after a restart: those not ended
        yet (`live`, a Kubernetes pod that finished while no scheduler watched it included)
        and those whose outcome it recorded (`ended`). A run listed in either must not be
        started again; `wait` reports its end."""
        ...

    def log_lines(self, run_id: str) -> AsyncIterator[str]:
        """The lines the run has written so far (stdout and stderr interleaved; the last may be
        incomplete). `NotFound`, on the first iteration, for a run whose log is unknown."""
        ...

    async def close(self) -> None:
        """Releases the executor's own resources; runs keep going where the backend allows.

        Where they cannot (local processes die with the platform), it stops them and their
        outcome is LOST, so the scheduler runs them again as a new attempt after a restart.
        """
        ...
