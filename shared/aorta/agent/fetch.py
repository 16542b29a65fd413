"""`aorta agent fetch`: the init container that fills an operator pod's input volumes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aorta.agent.plan import AgentPlan
from aorta.blobs import BlobStore, open_blob_store
from aorta.executors.transfers import Transferred, fetch_inputs
from aorta.executors.workspace import Workspace
from aorta.logger import get_logger
from aorta.settings import Settings

_log = get_logger(__name__)


async def fetch(plan: AgentPlan, blobs: BlobStore) -> Transferred:
    """Copies every object under each input's prefix into its volume (mounted under
    `plan.work` as a `Workspace` lays volumes out), keeping relative paths.

    Raises the store's errors (`NotFound`, `Unavailable`, ...) or `OSError`; the pod then fails
    to start and the executor reports START_FAILED with the message.
    """
    moved = await fetch_inputs(blobs, plan.inputs, Workspace(Path(plan.work)))
    _log.info("inputs fetched", files=moved.files, bytes=moved.size)
    return moved


async def fetch_from_environ(environ: Mapping[str, str]) -> Transferred:
    """`fetch` with the plan (`AORTA_AGENT_PLAN`) and the blob store (`AORTA_BLOB_STORE`,
    `AORTA_S3_*`) read from `environ`."""
    plan = AgentPlan.from_environ(environ)
    blobs = await open_blob_store(Settings.from_env(environ))
    try:
        return await fetch(plan, blobs)
    finally:
        await blobs.close()
