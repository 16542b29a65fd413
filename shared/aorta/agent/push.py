"""`aorta agent push`: the sidecar that stores an operator's outputs and log once it ended.

It learns that the operator container ended, and with which exit code, from the pod's status
through the API: a watch of its own pod (field selector on its name, which the downward API
hands it). Neither alternative gives an exit code: a shared `emptyDir` marker would need the
operator image to write it, and a shared process namespace shows a process vanish but not how
it ended. The token it uses is mounted in this container only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from aorta.agent.plan import NAMESPACE_VARIABLE, POD_VARIABLE, AgentPlan, PlanError
from aorta.blobs import BlobStore, open_blob_store
from aorta.errors import AortaError, Invalid, NotFound
from aorta.executors.run_log import NOTE_PREFIX
from aorta.executors.transfers import Transferred, push_outputs
from aorta.executors.workspace import Workspace
from aorta.kubernetes.api import POD, Json, KubeApi
from aorta.kubernetes.watch import ObjectWatch
from aorta.logger import get_logger
from aorta.settings import Settings

WATCH_LASTING = 300
"""Seconds one watch request of the pod lasts before it is resumed."""

_log = get_logger(__name__)


@dataclass(frozen=True)
class PushReport:
    """How the operator ended and what was stored (`outputs` is None after a non-zero exit)."""

    exit_code: int
    reason: str
    outputs: Transferred | None


async def operator_end(api: KubeApi, namespace: str, pod: str, container: str) -> Json:
    """Waits until `container` of pod `pod` has terminated and returns its terminated state
    (`exitCode`, `reason`, ...). `NotFound` when the pod disappears first."""
    watch = ObjectWatch(
        api, POD, namespace, "", lasting=WATCH_LASTING, fields=f"metadata.name={pod}"
    )
    try:
        await watch.synced()
        while True:
            version = watch.version
            current = watch.get(pod)
            if current is None:
                raise NotFound(f"pod {pod} no longer exists")
            for status in (current.get("status") or {}).get("containerStatuses") or ():
                terminated = (status.get("state") or {}).get("terminated")
                if status.get("name") == container and terminated:
                    result: Json = terminated
                    return result
            await watch.changed_since(version)
    finally:
        await watch.close()


async def push(
    plan: AgentPlan, blobs: BlobStore, api: KubeApi, namespace: str, pod: str
) -> PushReport:
    """Waits for the operator container to end; when it exited 0 stores each output folder
    under its prefix (replacing what an earlier attempt left); in every case stores the
    container's log at `plan.log_key`, closed by an `[aorta]` line saying what happened.

    Raises the error that kept the outputs from being stored, after storing the log; the
    sidecar then exits non-zero and the executor reports the run FAILED with that message.
    """
    state = await operator_end(api, namespace, pod, plan.container)
    code = int(state.get("exitCode", -1))
    reason = str(state.get("reason") or "")
    outputs: Transferred | None = None
    failure: Exception | None = None
    if code == 0:
        try:
            outputs = await push_outputs(blobs, plan.outputs, Workspace(Path(plan.work)))
        except (AortaError, OSError) as error:
            failure = error
    if outputs is not None:
        note = f"exited with code 0; outputs stored ({outputs.files} files, {outputs.size} bytes)"
        if outputs.skipped:
            note += f"; not stored (not regular files): {', '.join(outputs.skipped)}"
    elif failure is not None:
        note = f"exited with code 0, but its outputs could not be stored: {failure}"
    else:
        note = f"exited with code {code}{f' ({reason})' if reason else ''}; outputs not stored"
    await blobs.put(plan.log_key, _log_with_note(api, namespace, pod, plan.container, note))
    _log.info("operator ended", exit_code=code, reason=reason, note=note)
    if failure is not None:
        raise failure
    return PushReport(exit_code=code, reason=reason, outputs=outputs)


async def push_from_environ(environ: Mapping[str, str], api: KubeApi) -> PushReport:
    """`push` with the plan, the pod's name and namespace (`AORTA_AGENT_PLAN`,
    `AORTA_AGENT_POD`, `AORTA_AGENT_NAMESPACE`) and the blob store read from `environ`."""
    plan = AgentPlan.from_environ(environ)
    pod = environ.get(POD_VARIABLE, "")
    namespace = environ.get(NAMESPACE_VARIABLE, "")
    if not pod or not namespace:
        raise PlanError(f"{POD_VARIABLE} and {NAMESPACE_VARIABLE} must name the agent's own pod")
    blobs = await open_blob_store(Settings.from_env(environ))
    try:
        return await push(plan, blobs, api, namespace, pod)
    finally:
        await blobs.close()


async def _log_with_note(
    api: KubeApi, namespace: str, pod: str, container: str, note: str
) -> AsyncIterator[bytes]:
    ends_line = True
    try:
        async for chunk in api.pod_log(namespace, pod, container):
            if chunk:
                ends_line = chunk.endswith(b"\n")
                yield chunk
    except (Invalid, NotFound) as error:
        note += f" (its log could not be read: {error})"
    line = f"{NOTE_PREFIX}{note}\n".encode()
    yield line if ends_line else b"\n" + line
