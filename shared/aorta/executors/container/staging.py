"""A fresh container run's staging: what comes between its workspace and its container's start.

`stage` fetches the run's inputs into the workspace, opens its volumes to the container's user,
makes its image present (pull policy, registry credentials) and creates its container; a
container of that name made by an earlier try is adopted. A stop request cancels the step under
way and ends the staging with `Stopped` (`aorta.executors.stopping`). `claimed` holds the
workspace against sweeps (`aorta.executors.container.workspace_claims`) from before the
workspace is made; the run (`aorta.executors.container.container_run`) releases the claim at
its end.
"""

from __future__ import annotations

import asyncio

from aorta.blobs import BlobStore
from aorta.errors import AortaError, Conflict
from aorta.executors.container.engine import ContainerEngine
from aorta.executors.container.libpod_spec import create_request
from aorta.executors.container.pull import ensure_image
from aorta.executors.container.settings import ContainerSettings
from aorta.executors.container.spec import RunPlan, image_reference
from aorta.executors.container.volume_modes import open_volumes
from aorta.executors.container.workspace_claims import Claim, try_claim
from aorta.executors.port import OperatorRun
from aorta.executors.stopping import Stopped, unless_stopped
from aorta.executors.transfers import fetch_inputs
from aorta.executors.workspace import Workspace
from aorta.logger import get_logger

CLAIM_RETRY = 0.05
"""Seconds between tries of a workspace claim that a sweep holds for a moment."""

_log = get_logger(__name__)


class StagingFailed(Exception):
    """A step of the staging failed; the message says which and why (the run's START_FAILED
    outcome carries it)."""


async def stage(
    run: OperatorRun,
    *,
    name: str,
    plan: RunPlan,
    workspace: Workspace,
    engine: ContainerEngine,
    blobs: BlobStore,
    settings: ContainerSettings,
    stop: asyncio.Event,
) -> None:
    """Stages `run` in its created `workspace` up to its container `name`, created and not
    started. `Stopped` when `stop` is set before the container is created, `StagingFailed`
    when a step fails."""
    try:
        await unless_stopped(fetch_inputs(blobs, run.inputs, workspace), stop)
        if stop.is_set():
            raise Stopped
        await asyncio.to_thread(open_volumes, workspace, run)
        reference = image_reference(run.image, run.tag)
        await unless_stopped(
            ensure_image(
                engine,
                reference,
                policy=settings.pull_policy,
                auth_file=settings.auth_file,
                secrets=run.pull_secrets,
            ),
            stop,
        )
        bindings = [*run.inputs, *run.outputs]
        request = create_request(
            run,
            volumes={b.path: workspace.volume(b.path) for b in bindings},
            plan=plan,
            engine=engine.kind,
            settings=settings,
        )
    except (AortaError, OSError) as error:
        text = "; ".join(error.messages) if isinstance(error, AortaError) else str(error)
        raise StagingFailed(text) from error
    try:
        await engine.create(name, request)
    except Conflict:
        _log.info("operator container exists already: adopted", container=name)
    except AortaError as error:
        raise StagingFailed("; ".join(error.messages)) from error
    _log.info("operator container created", run_id=run.run_id, container=name)


async def claimed(workspace: Workspace) -> Claim:
    """The workspace's claim, once no one else holds it: a sweep looking at the folder lets it
    go at once."""
    root = workspace.folder.parent.parent
    while True:
        claim = await asyncio.to_thread(try_claim, root, workspace.folder)
        if claim is not None:
            return claim
        await asyncio.sleep(CLAIM_RETRY)
