"""The container of one operator run, as a Docker Engine API create body: pure, no I/O.

Clara's container semantics, the same as the Kubernetes executor's pods:

- the operator's own image (`image:tag`); no `command` runs the image's entrypoint and command,
  a `command` replaces the image's command (`Cmd`), which is what Kubernetes' `args` does;
- every declared input bind-mounted read-only at exactly its declared path, every output
  read-write at its own; the environment contract (`aorta.operator_env`) names those paths;
- the data folder of each pipeline service the operator declares (`service_mounts`) mounted
  read-only at its declared path;
- `requests.cpu` and `requests.memory` as enforced limits (no swap beyond the memory limit), the
  GPUs the scheduler assigned as a device request (`aorta.executors.container.devices`).

Isolation by default: not privileged, every capability dropped, `no-new-privileges`, a tmpfs
`/tmp`, no mount but the run's own folders, an environment built from nothing but the contract
and the operator's `variables`, no network unless the operator must reach Triton or a pipeline
service (`needs_network`).

Labels say whose container it is (`aorta.instance`, `aorta.component=operator`, run, job,
operator, attempt) and carry the
run's plan (`RunPlan`: where its outputs and log go, its timeout, its work folder), so that an
executor started after a crash can finish a run it never started.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aorta.errors import Invalid
from aorta.executors.container.devices import device_requests
from aorta.executors.container.settings import ContainerSettings
from aorta.executors.kubernetes.pods import operator_environment
from aorta.executors.port import OperatorRun, VolumeBinding
from aorta.operator_env import TRITON_GRPC_URI, TRITON_HTTP_URI

Json = dict[str, Any]

INSTANCE_LABEL = "aorta.instance"
COMPONENT_LABEL = "aorta.component"
OPERATOR_COMPONENT = "operator"
"""Beside `triton` (the container Triton backend's servers), which share the instance label."""
RUN_LABEL = "aorta.run"
JOB_LABEL = "aorta.job"
OPERATOR_LABEL = "aorta.operator"
ATTEMPT_LABEL = "aorta.attempt"
PLAN_LABEL = "aorta.plan"
NO_NETWORK = "none"
TMP_OPTIONS = "rw,nosuid,nodev"

_NANO = 1_000_000_000
_MIB = 1 << 20
_BIND_UNSAFE = frozenset(":,")
_LOOPBACK_ADDRESS = re.compile(r"^(127\.0\.0\.1|localhost|\[::1\]):[0-9]{1,5}$")


@dataclass(frozen=True)
class RunPlan:
    """What finishing a run needs once its container has exited, kept in a label."""

    run_id: str
    operator: str
    outputs: tuple[VolumeBinding, ...]
    log_key: str
    timeout: float
    work_folder: str

    def to_label(self) -> str:
        """The plan as the JSON text of `PLAN_LABEL`."""
        return json.dumps(
            {
                "run_id": self.run_id,
                "operator": self.operator,
                "outputs": [[b.entry_name, b.path, b.blob_prefix] for b in self.outputs],
                "log_key": self.log_key,
                "timeout": self.timeout,
                "work_folder": self.work_folder,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> RunPlan:
        """The plan a container carries; `Invalid` when its label is missing or malformed."""
        try:
            raw = json.loads(labels[PLAN_LABEL])
            return cls(
                run_id=str(raw["run_id"]),
                operator=str(raw["operator"]),
                outputs=tuple(
                    VolumeBinding(str(name), str(path), str(prefix))
                    for name, path, prefix in raw["outputs"]
                ),
                log_key=str(raw["log_key"]),
                timeout=float(raw["timeout"]),
                work_folder=str(raw["work_folder"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise Invalid(f"the container's {PLAN_LABEL} label is unreadable: {error!r}") from None


def image_reference(image: str, tag: str) -> str:
    """`image:tag` as the definition names it (`latest` when it names no tag); a reference
    that already carries a digest is used as it is."""
    return image if "@" in image else f"{image}:{tag or 'latest'}"


def container_name(instance: str, run_id: str) -> str:
    """The container's name: one per run and platform instance, so a second create of the
    same run is refused by the engine (409) and the run is adopted instead."""
    return f"{instance}-{run_id}"


def owner_labels(instance: str) -> dict[str, str]:
    """The labels every operator container of the platform `instance` carries."""
    return {INSTANCE_LABEL: instance, COMPONENT_LABEL: OPERATOR_COMPONENT}


def run_labels(run: OperatorRun, instance: str, plan: RunPlan) -> dict[str, str]:
    """The labels of a run's container; `running()` and adoption select on them."""
    return {
        **owner_labels(instance),
        RUN_LABEL: run.run_id,
        JOB_LABEL: run.job_id,
        OPERATOR_LABEL: run.operator,
        ATTEMPT_LABEL: str(run.attempt),
        PLAN_LABEL: plan.to_label(),
    }


def needs_network(run: OperatorRun) -> bool:
    """Whether the operator must reach something outside its container: Triton, or a
    pipeline service (a data folder of one, or a variable naming an address on the host's
    loopback, where services publish their ports). A variable grants nothing a pipeline could
    not have by declaring a service."""
    if run.service_mounts or any(
        run.environment.get(name) for name in (TRITON_GRPC_URI, TRITON_HTTP_URI)
    ):
        return True
    return any(_LOOPBACK_ADDRESS.match(value) for value in run.environment.values())


def service_binds(run: OperatorRun) -> list[tuple[str, str]]:
    """(source, path) of the data folder of each pipeline service the operator declares, to be
    mounted read-only: a named volume of the engine, or a host folder (an absolute source).
    `Invalid` for a path or source a mount cannot name."""
    binds = []
    for mount in run.service_mounts:
        if _BIND_UNSAFE & set(mount.path + mount.source) or not mount.path.startswith("/"):
            raise Invalid(
                f"service folder path {mount.path!r} cannot be mounted: it must be absolute, "
                "without ':' or ','"
            )
        binds.append((mount.source, mount.path))
    return binds


def bind_mounts(run: OperatorRun, volumes: Mapping[str, Path]) -> list[tuple[str, str, bool]]:
    """(host folder, declared path, read-only) of every input (read-only) and output. `Invalid`
    for a declared path without a folder in `volumes`, or one a bind mount cannot name (`:`
    or `,`)."""
    return [
        *(_mount(volumes, binding, read_only=True) for binding in run.inputs),
        *(_mount(volumes, binding, read_only=False) for binding in run.outputs),
    ]


def create_body(
    run: OperatorRun,
    *,
    volumes: Mapping[str, Path],
    plan: RunPlan,
    settings: ContainerSettings,
) -> Json:
    """The Docker Engine API's `POST /containers/create` body of `run`.

    `volumes` maps each declared path of `run` to the host folder bind-mounted there (the run's
    workspace, `aorta.executors.workspace`). GPUs are a device request (Docker's; see
    `aorta.executors.container.devices` for Podman). Raises `Invalid` as `bind_mounts` does, and
    for run variables that use a name the environment contract reserves.
    """
    binds = [
        f"{source}:{target}:{'ro' if read_only else 'rw'}"
        for source, target, read_only in bind_mounts(run, volumes)
    ]
    binds.extend(f"{source}:{target}:ro" for source, target in service_binds(run))
    host_config: Json = {
        "Binds": binds,
        "Privileged": False,
        "CapDrop": ["ALL"],
        "SecurityOpt": ["no-new-privileges"],
        "Tmpfs": {"/tmp": TMP_OPTIONS},
        "NetworkMode": network(run, settings),
        "NanoCpus": run.resources.cpu * _NANO,
        "Memory": memory_bytes(run),
        "MemorySwap": memory_bytes(run),
        "Init": True,
        "RestartPolicy": {"Name": "no"},
    }
    requests = device_requests(run.resources.gpu_devices)
    if requests:
        host_config["DeviceRequests"] = requests
    body: Json = {
        "Image": image_reference(run.image, run.tag),
        "Env": [f"{name}={value}" for name, value in sorted(operator_environment(run).items())],
        "Labels": run_labels(run, settings.instance, plan),
        "StopTimeout": math.ceil(settings.stop_grace),
        "HostConfig": host_config,
    }
    if run.command:
        body["Cmd"] = list(run.command)
    return body


def network(run: OperatorRun, settings: ContainerSettings) -> str:
    """`none`, or the service network for an operator that must reach Triton."""
    return settings.service_network if needs_network(run) else NO_NETWORK


def memory_bytes(run: OperatorRun) -> int:
    """The memory limit: the operator's `memory` request."""
    return run.resources.memory_mb * _MIB


def _mount(
    volumes: Mapping[str, Path], binding: VolumeBinding, *, read_only: bool
) -> tuple[str, str, bool]:
    folder = volumes.get(binding.path)
    if folder is None:
        raise Invalid(f"no folder was prepared for {binding.path!r}")
    if _BIND_UNSAFE & set(binding.path) or _BIND_UNSAFE & set(str(folder)):
        raise Invalid(f"path {binding.path!r} cannot be bind-mounted: it holds ':' or ','")
    return str(folder), binding.path, read_only
