"""The scheduler's own settings, beside the core `aorta.settings.Settings` every service gets.

`ServiceContext` carries only the core settings, so the scheduler reads these from an
environment mapping handed to `app.start` (the process environment by default). What the node
offers defaults to what this machine has; `NodeFacts` carries those measurements in, so that
`SchedulerSettings.from_env` depends on its arguments alone.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from aorta.errors import Invalid
from aorta.executors.local.operator_user import DEFAULT_RUN_AS, RUN_AS
from aorta.settings import EnvReader, SettingsError
from aorta_services.scheduler.domain import Capacity, QueueWeights

GPUS = "AORTA_SCHEDULER_GPUS"
CPUS = "AORTA_SCHEDULER_CPUS"
MEMORY_MB = "AORTA_SCHEDULER_MEMORY_MB"
CPU_OVERCOMMIT = "AORTA_SCHEDULER_CPU_OVERCOMMIT"
WEIGHTS = "AORTA_SCHEDULER_WEIGHTS"
AGING = "AORTA_SCHEDULER_AGING"
HOLD_AFTER = "AORTA_SCHEDULER_HOLD_AFTER"
DEFAULT_TIMEOUT = "AORTA_SCHEDULER_DEFAULT_TIMEOUT"
MAX_TIMEOUT = "AORTA_SCHEDULER_MAX_TIMEOUT"
GRACE = "AORTA_SCHEDULER_GRACE"
LEASE_TTL = "AORTA_SCHEDULER_LEASE_TTL"
RESYNC = "AORTA_SCHEDULER_RESYNC"
EXECUTOR = "AORTA_EXECUTOR"
EXECUTOR_ALIAS = "AORTA_SCHEDULER_EXECUTOR"
WORK_DIR = "AORTA_SCHEDULER_WORK_DIR"

EXECUTORS = ("local", "kubernetes", "container", "auto")


@dataclass(frozen=True)
class NodeFacts:
    """What this machine has, measured by the caller: the defaults of the capacity settings."""

    gpus: int
    cpus: int
    memory_mb: int

    @staticmethod
    def measure(gpus: int) -> NodeFacts:
        """This machine's cores and memory; `gpus` comes from `aorta.gpu.gpu_count()` (async)."""
        return NodeFacts(
            gpus=gpus,
            cpus=os.cpu_count() or 1,
            memory_mb=max(1, psutil.virtual_memory().total // (1024 * 1024)),
        )


@dataclass(frozen=True)
class SchedulerSettings:
    """How the scheduler sizes the node, orders the queue, times operators out and leads.

    - `AORTA_SCHEDULER_GPUS`: a count (`2` means devices 0 and 1) or a comma-separated list of
      device indices (`0,2`; a single index as `3,`); default: the GPUs NVML sees.
    - `AORTA_SCHEDULER_CPUS` (default: the machine's cores) and `AORTA_SCHEDULER_MEMORY_MB`
      (default: the machine's memory): what operators' requests are counted against.
    - `AORTA_SCHEDULER_CPU_OVERCOMMIT` (default 4, at least 1): CPU requests are admitted
      against cores x this factor, since CPU is shareable.
    - `AORTA_SCHEDULER_WEIGHTS` (default `4:2:1`): how often HIGHER:NORMAL:LOWER jobs are
      offered a slot of the weighted rotation.
    - `AORTA_SCHEDULER_AGING` (seconds, default 300): a queued job moves up one class per period.
    - `AORTA_SCHEDULER_HOLD_AFTER` (seconds, default 900): a job waiting this long is the only
      candidate, and the node drains for it.
    - `AORTA_SCHEDULER_DEFAULT_TIMEOUT` (seconds, default 600) for a pipeline or operator that
      names none; `AORTA_SCHEDULER_MAX_TIMEOUT` (default 1800) caps every timeout;
      `AORTA_SCHEDULER_GRACE` (default 15): how long a stopped operator has between SIGTERM
      and SIGKILL, and what a job gets beyond its timeout.
    - `AORTA_SCHEDULER_LEASE_TTL` (seconds, default 10): how long a leader's lease lasts without
      renewal, so how long a crashed leader's jobs wait before a follower takes over.
    - `AORTA_SCHEDULER_RESYNC` (seconds, default 2): how often the leader re-reads the store
      even when no replica told it of a change.
    - `AORTA_EXECUTOR` (or its older name `AORTA_SCHEDULER_EXECUTOR`; default `local`): where
      operators run: `local` processes, `container`s on the engine at `AORTA_CONTAINER_HOST`,
      `auto` (containers when an engine answers there, else local processes), or `kubernetes`
      pods on the cluster the `AORTA_K8S_*` variables name. With pods the capacity settings
      above are what the scheduler admits against on the cluster's behalf: set
      `AORTA_SCHEDULER_GPUS` to the GPUs its jobs may hold (the scheduler's own node has none).
    - `AORTA_SCHEDULER_WORK_DIR` (default `/var/tmp/aorta-runs-<uid>/<key of the data dir>`,
      None here: `aorta.executors.local.work_folders.default_work_root`): the host executors'
      folders; never inside the data dir, whose files operators must not reach.
    - `AORTA_LOCAL_RUN_AS` (default `aorta-operator`): the user (a name or `uid[:gid]`) the
      local executor runs operators as when the platform is root; `root` runs them as root.
    """

    capacity: Capacity
    weights: QueueWeights = field(default_factory=QueueWeights)
    aging: float = 300.0
    hold_after: float = 900.0
    default_timeout: int = 600
    max_timeout: int = 1800
    grace: float = 15.0
    lease_ttl: float = 10.0
    resync: float = 2.0
    executor: str = "local"
    work_dir: Path | None = None
    run_as: str = DEFAULT_RUN_AS

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], *, data_dir: Path, node: NodeFacts
    ) -> SchedulerSettings:
        """Reads the settings; raises `SettingsError` naming the variable that is wrong."""
        env = EnvReader(environ)
        default_timeout = env.integer(DEFAULT_TIMEOUT, 600, minimum=1)
        max_timeout = env.integer(MAX_TIMEOUT, 1800, minimum=1)
        if default_timeout > max_timeout:
            raise SettingsError(
                f"setting {DEFAULT_TIMEOUT}={default_timeout} is above {MAX_TIMEOUT}={max_timeout}"
            )
        overcommit = env.number(CPU_OVERCOMMIT, 4.0, minimum=1.0)
        try:
            capacity = Capacity(
                gpus=parse_gpus(environ.get(GPUS, ""), detected=node.gpus),
                cpu=env.integer(CPUS, node.cpus, minimum=1),
                memory_mb=env.integer(MEMORY_MB, node.memory_mb, minimum=1),
                cpu_overcommit=_finite(overcommit, CPU_OVERCOMMIT),
            )
        except SettingsError:
            raise
        except Invalid as error:
            raise SettingsError(f"the scheduler's node capacity is wrong: {error}") from None
        return cls(
            capacity=capacity,
            weights=parse_weights(environ.get(WEIGHTS, "")),
            aging=_finite(env.number(AGING, 300.0, minimum=0.001), AGING),
            hold_after=_finite(env.number(HOLD_AFTER, 900.0, minimum=0.001), HOLD_AFTER),
            default_timeout=default_timeout,
            max_timeout=max_timeout,
            grace=_finite(env.number(GRACE, 15.0, minimum=0.0), GRACE),
            lease_ttl=_finite(env.number(LEASE_TTL, 10.0, minimum=0.3), LEASE_TTL),
            resync=_finite(env.number(RESYNC, 2.0, minimum=0.05), RESYNC),
            executor=_executor(env),
            work_dir=_work_dir(env.optional(WORK_DIR), data_dir),
            run_as=env.text(RUN_AS, DEFAULT_RUN_AS),
        )


def parse_gpus(raw: str, *, detected: int) -> tuple[int, ...]:
    """`AORTA_SCHEDULER_GPUS`: empty for `detected` devices, `N` for N, `a,b,...` for indices."""
    text = raw.strip()
    if not text:
        return tuple(range(detected))
    if "," not in text:
        if not text.isdigit():
            raise SettingsError(
                f"setting {GPUS}={raw!r} is neither a GPU count nor a list of device indices "
                "(write 2 for devices 0 and 1, or 0,2 for those devices)"
            )
        return tuple(range(int(text)))
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items or not all(item.isdigit() for item in items):
        raise SettingsError(f"setting {GPUS}={raw!r} is not a list of device indices such as 0,2")
    indices = tuple(int(item) for item in items)
    if len(set(indices)) != len(indices):
        raise SettingsError(f"setting {GPUS}={raw!r} names a device twice")
    return indices


def parse_weights(raw: str) -> QueueWeights:
    """`AORTA_SCHEDULER_WEIGHTS`: `higher:normal:lower`, each 1 to 100; empty for 4:2:1."""
    text = raw.strip()
    if not text:
        return QueueWeights()
    parts = text.split(":")
    if len(parts) != 3 or not all(part.strip().isdigit() for part in parts):
        raise SettingsError(
            f"setting {WEIGHTS}={raw!r} must be three whole numbers higher:normal:lower, e.g. 4:2:1"
        )
    higher, normal, lower = (int(part) for part in parts)
    try:
        return QueueWeights(higher=higher, normal=normal, lower=lower)
    except Invalid as error:
        raise SettingsError(f"setting {WEIGHTS}={raw!r}: {error}") from None


def _executor(env: EnvReader) -> str:
    if env.optional(EXECUTOR) is not None:
        return env.choice(EXECUTOR, "local", EXECUTORS)
    return env.choice(EXECUTOR_ALIAS, "local", EXECUTORS)


def _work_dir(raw: str | None, data_dir: Path) -> Path | None:
    if raw is None:
        return None
    work_dir = Path(raw).absolute()
    if work_dir.is_relative_to(data_dir.absolute()):
        raise SettingsError(
            f"setting {WORK_DIR}={raw!r} lies inside the data dir {data_dir}: operators must not "
            "reach the platform's files, so choose a folder elsewhere (or leave it unset)"
        )
    return work_dir


def _finite(value: float, name: str) -> float:
    if not math.isfinite(value):
        raise SettingsError(f"setting {name}={value!r} is not a finite number")
    return value
