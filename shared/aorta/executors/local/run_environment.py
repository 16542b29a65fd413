"""What a host-process run is given: the executor's settings every run uses (`RunConfig`),
the operator's whole environment built from nothing, and the links that show pipeline
services' folders at their declared paths."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from aorta import ids
from aorta.executors.local.operator_user import OperatorUser
from aorta.executors.local.standby_leader import StandbyLeaders
from aorta.executors.port import OperatorRun, ServiceMount
from aorta.executors.workspace import Workspace
from aorta.operator_env import (
    LEGACY_TRITON_URI,
    LEGACY_TRTIS_URI,
    TRITON_GRPC_URI,
    TRITON_HTTP_URI,
    OperatorEnvironment,
    PathEntry,
)


@dataclass(frozen=True)
class RunConfig:
    """The executor's settings every run uses (see `LocalExecutor`)."""

    python_bin_dir: Path
    search_path: str
    user: OperatorUser
    timezone: str | None
    log_flush_interval: float
    max_log_bytes: int
    stop_grace: float
    keep_workspaces: bool
    leaders: StandbyLeaders = field(default_factory=StandbyLeaders)
    """The group leader started ahead of the next run (`aorta.executors.local.standby_leader`),
    one per executor; closed with it."""


def operator_environment(
    run: OperatorRun, workspace: Workspace, config: RunConfig
) -> dict[str, str]:
    """The whole environment of the operator process, built from nothing: no variable of the
    platform's own (its `AORTA_*` settings and their secrets, `DOCKER_HOST`, `SSH_AUTH_SOCK`...)
    reaches an operator.

    In order, later winning: `PATH` (the platform's Python first, so `python -m aorta.driver.app`
    finds the platform's packages without `PYTHONPATH`; then the platform's search path),
    `HOME` and `TMPDIR` in the workspace, `LANG`, the platform's `TZ` when it has one,
    `PYTHONUNBUFFERED`; then the run's `environment` (operator variables; the Triton addresses
    in it become the contract's); then the contract itself (`aorta.operator_env`, entry paths
    being the host folders); then `CUDA_VISIBLE_DEVICES` from the allocation.
    `Invalid` for what the contract refuses.
    """
    variables = dict(run.environment)
    grpc = variables.pop(TRITON_GRPC_URI, None)
    legacy = [variables.pop(name, None) for name in (LEGACY_TRITON_URI, LEGACY_TRTIS_URI)]
    http = variables.pop(TRITON_HTTP_URI, None) or next((uri for uri in legacy if uri), None)
    contract = OperatorEnvironment(
        job_id=ids.job_id(run.job_id),
        job_name=run.job_name,
        stage_name=run.operator,
        stage_timeout=run.timeout,
        payload_id=ids.payload_id(run.payload_id),
        inputs=tuple(PathEntry(b.entry_name, str(workspace.volume(b.path))) for b in run.inputs),
        outputs=tuple(PathEntry(b.entry_name, str(workspace.volume(b.path))) for b in run.outputs),
        triton_grpc_uri=grpc,
        triton_http_uri=http,
        nosynclock=True,
        variables=variables,
    )
    base = {
        "PATH": f"{config.python_bin_dir}{os.pathsep}{config.search_path}",
        "HOME": str(workspace.home),
        "TMPDIR": str(workspace.tmp),
        "LANG": "C.UTF-8",
        # Python operators started without -u still show their output while they run.
        "PYTHONUNBUFFERED": "1",
    }
    if config.timezone:
        base["TZ"] = config.timezone
    devices = ",".join(str(index) for index in run.resources.gpu_devices)
    return base | contract.to_env() | {"CUDA_VISIBLE_DEVICES": devices}


def link_service_mounts(workspace: Workspace, mounts: tuple[ServiceMount, ...]) -> None:
    """Makes each service data folder visible at its declared path the way this executor
    shows declared paths: the path's folder in the workspace (`volumes/<path>`) is a link to
    the service's folder. The operator finds the folder itself through the connection's
    variable, which holds the host path. `Invalid` for a path that is not rooted and plain,
    `OSError` when it collides with an input or output."""
    for mount in mounts:
        link = workspace.volume(mount.path)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(mount.source, target_is_directory=True)
