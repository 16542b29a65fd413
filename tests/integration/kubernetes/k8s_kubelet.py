"""A simulated kubelet for the stand-in API server, and the operator plays tests run.

The stand-in stores pods; this plays the node for each operator pod it sees created, from the
pod's own spec: its `emptyDir` volumes become folders, and each container's mounts become links
to them under a root of its own; the init container's `aorta agent fetch` and the sidecar's
`aorta agent push` run in-process (the library functions behind the commands, with the
container's environment and the plan's work folder moved under that root); the operator
container does what the test's `Play` says; the pod goes Pending → Running → Succeeded/Failed,
with the kubelet's own endings for a deadline (`DeadlineExceeded`) and a deletion.

On a real cluster the same `Play` runs as a busybox shell script (`Play.script`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aorta.agent.fetch import fetch_from_environ
from aorta.agent.plan import PLAN_VARIABLE, AgentPlan
from aorta.agent.push import push_from_environ
from aorta.executors.kubernetes.pods import FETCH_CONTAINER, OPERATOR_CONTAINER, PUSH_CONTAINER
from aorta.kubernetes import names
from aorta.kubernetes.api import KubeApi
from aorta.testing.kube_api import KubeApiServer

Json = dict[str, Any]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def running() -> Json:
    return {"running": {"startedAt": _now()}}


def terminated(exit_code: int, reason: str = "", message: str = "") -> Json:
    state: Json = {
        "exitCode": exit_code,
        "reason": reason or ("Completed" if exit_code == 0 else "Error"),
        "startedAt": _now(),
        "finishedAt": _now(),
    }
    if message:
        state["message"] = message
    return {"terminated": state}


def waiting(reason: str = "PodInitializing", message: str = "") -> Json:
    return {"waiting": {"reason": reason, **({"message": message} if message else {})}}


def set_pod_phase(
    server: KubeApiServer,
    namespace: str,
    name: str,
    phase: str,
    containers: Mapping[str, Json],
    *,
    init: Mapping[str, Json] | None = None,
    reason: str = "",
) -> None:
    """Sets a pod's phase and container states, with what a kubelet reports beside them."""
    pod = server.get("pods", namespace, name)
    if pod is None:
        return  # deleted meanwhile
    spec = pod["spec"]
    images = {c["name"]: c["image"] for c in spec["containers"] + spec.get("initContainers", [])}

    def statuses(states: Mapping[str, Json]) -> list[Json]:
        return [
            {
                "name": container,
                "image": images[container],
                "imageID": f"stand-in://{images[container]}",
                "ready": "running" in state,
                "restartCount": 0,
                "state": state,
            }
            for container, state in states.items()
        ]

    # The kubelet stamps the pod's start once, when it takes the pod (before init containers).
    started = pod.get("status", {}).get("startTime") or _now()
    status: Json = {"phase": phase, "startTime": started, "containerStatuses": statuses(containers)}
    if init:
        status["initContainerStatuses"] = statuses(init)
    if reason:
        status["reason"] = reason
    server.set_status("pods", namespace, name, status)


@dataclass(frozen=True)
class Play:
    """What an operator does: print `log`, sleep `sleep` seconds, copy every input file into
    each output folder, write `write` (relative name → text) there, and exit with `exit_code`;
    or run until stopped (`hang`), or be killed for its memory (`oom`).

    `release`, on the stand-in only, holds the operator after its log until the test sets it:
    a test that must act while the operator runs waits for that, not for a guessed `sleep`
    that a busy machine may outlast (`script` has no counterpart; a real cluster's play sleeps).
    """

    log: str = ""
    sleep: float = 0.0
    copy_inputs: bool = True
    write: Mapping[str, str] = field(default_factory=dict)
    exit_code: int = 0
    hang: bool = False
    oom: bool = False
    release: asyncio.Event | None = field(default=None, compare=False)

    def script(self, inputs: list[str], outputs: list[str]) -> str:
        """The same behaviour as a POSIX shell script (busybox), for a real cluster."""
        lines = [f"printf '%s\\n' {shlex.quote(line)}" for line in self.log.splitlines()]
        if self.sleep:
            lines.append(f"sleep {self.sleep:g}")
        for output in outputs:
            if self.copy_inputs:
                lines += [f"cp -R {shlex.quote(i)}/. {shlex.quote(output)}/" for i in inputs]
            for relative, text in self.write.items():
                target = shlex.quote(f"{output}/{relative}")
                lines.append(
                    f"mkdir -p $(dirname {target}) && printf %s {shlex.quote(text)} > {target}"
                )
        if self.hang:
            lines.append("while true; do sleep 1; done")
        if self.oom:
            lines.append("tail /dev/zero")
        lines.append(f"exit {self.exit_code}")
        return "\n".join(lines)


class SimulatedKubelet:
    """Runs every operator pod created on `server` whose run id has a play in `plays`."""

    def __init__(self, server: KubeApiServer, api: KubeApi, root: Path) -> None:
        self._server = server
        self._api = api
        self._root = root
        self._tasks: set[asyncio.Task[None]] = set()
        self.plays: dict[str, Play] = {}
        self.failures: list[BaseException] = []
        server.hooks.append(self._created)

    async def settle(self) -> None:
        """Waits for the pods in play to end (a pod's push may outlive its outcome)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _created(self, plural: str, obj: Json) -> None:
        run_id = obj["metadata"].get("annotations", {}).get(names.RUN_ID_ANNOTATION)
        if plural == "pods" and run_id in self.plays:
            task = asyncio.create_task(self._guarded(obj, self.plays[run_id]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _guarded(self, pod: Json, play: Play) -> None:
        try:
            await self._run(pod, play)
        except Exception as error:  # a broken simulation must fail the test, not vanish
            self.failures.append(error)
            raise

    async def _run(self, pod: Json, play: Play) -> None:
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        spec = pod["spec"]
        started = asyncio.get_running_loop().time()
        folder = self._root / name
        volumes = {v["name"]: folder / "volumes" / v["name"] for v in spec["volumes"]}
        for path in volumes.values():
            path.mkdir(parents=True)
        fetch = spec["initContainers"][0]
        operator, push = spec["containers"]
        assert (fetch["name"], operator["name"], push["name"]) == (
            FETCH_CONTAINER,
            OPERATOR_CONTAINER,
            PUSH_CONTAINER,
        )
        pending = {OPERATOR_CONTAINER: waiting(), PUSH_CONTAINER: waiting()}
        set_pod_phase(self._server, ns, name, "Pending", pending, init={FETCH_CONTAINER: running()})
        try:
            await fetch_from_environ(self._agent_env(pod, fetch, folder, volumes))
        except Exception as error:
            init = {FETCH_CONTAINER: terminated(1, message=f"aorta agent: {error}")}
            set_pod_phase(self._server, ns, name, "Failed", pending, init=init)
            return
        init = {FETCH_CONTAINER: terminated(0)}
        states = {OPERATOR_CONTAINER: running(), PUSH_CONTAINER: running()}
        set_pod_phase(self._server, ns, name, "Running", states, init=init)
        env = self._agent_env(pod, push, folder, volumes)
        pushing = asyncio.create_task(push_from_environ(env, self._api))
        operate = asyncio.create_task(self._operate(ns, name, operator, volumes, play))
        if await self._past_deadline(ns, name, operate, started):
            code, reason, ending = 137, "Error", "DeadlineExceeded"
        else:
            (code, reason), ending = operate.result(), ""
        states[OPERATOR_CONTAINER] = terminated(code, reason)
        set_pod_phase(self._server, ns, name, "Running", states, init=init)
        try:
            await pushing
            states[PUSH_CONTAINER] = terminated(0)
        except Exception as error:
            states[PUSH_CONTAINER] = terminated(1, message=f"aorta agent: {error}")
        succeeded = (
            code == 0
            and "terminated" in states[PUSH_CONTAINER]
            and (states[PUSH_CONTAINER]["terminated"]["exitCode"] == 0)
        )
        phase = "Succeeded" if succeeded else "Failed"
        set_pod_phase(
            self._server,
            ns,
            name,
            phase,
            states,
            init=init,
            reason=ending,
        )

    async def _past_deadline(
        self, ns: str, name: str, operate: asyncio.Task[tuple[int, str]], started: float
    ) -> bool:
        """Waits for `operate`; True (and `operate` cancelled) when the pod's current
        `activeDeadlineSeconds`, which the executor may lower meanwhile, passes first."""
        loop = asyncio.get_running_loop()
        while not operate.done():
            pod = self._server.get("pods", ns, name)
            deadline = pod["spec"]["activeDeadlineSeconds"] if pod else 0
            remaining = started + deadline - loop.time()
            if pod is not None and remaining <= 0:
                operate.cancel()
                await asyncio.gather(operate, return_exceptions=True)
                return True
            # Re-read the deadline now and then: a patch may have lowered it.
            await asyncio.wait([operate], timeout=min(max(remaining, 0.0), 0.05))
        return False

    async def _operate(
        self, ns: str, name: str, operator: Json, volumes: Mapping[str, Path], play: Play
    ) -> tuple[int, str]:
        mounts = operator["volumeMounts"]
        inputs = [volumes[m["name"]] for m in mounts if m.get("readOnly")]
        outputs = [volumes[m["name"]] for m in mounts if not m.get("readOnly")]
        self._server.set_log(ns, name, OPERATOR_CONTAINER, play.log)
        if play.hang:
            while (pod := self._server.get("pods", ns, name)) and not pod["metadata"].get(
                "deletionTimestamp"
            ):
                await self._server.next_change()
            return 137, "Error"  # SIGTERM ignored, SIGKILL after the grace period
        if play.release is not None:
            await play.release.wait()
        await asyncio.sleep(play.sleep)
        for output in outputs:
            if play.copy_inputs:
                for source in inputs:
                    for path in source.rglob("*"):
                        if path.is_file():
                            target = output / path.relative_to(source)
                            target.parent.mkdir(parents=True, exist_ok=True)
                            target.write_bytes(path.read_bytes())
            for relative, text in play.write.items():
                (output / relative).parent.mkdir(parents=True, exist_ok=True)
                (output / relative).write_text(text)
        return (137, "OOMKilled") if play.oom else (play.exit_code, "")

    def _agent_env(
        self, pod: Json, container: Json, folder: Path, volumes: Mapping[str, Path]
    ) -> dict[str, str]:
        """The container's environment as the kubelet resolves it, its mounts made links under
        a root of its own, and the plan's work folder moved there."""
        root = folder / container["name"]
        for mount in container["volumeMounts"]:
            if mount["name"] in volumes and mount["mountPath"].startswith("/aorta/"):
                link = root / mount["mountPath"].lstrip("/")
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(volumes[mount["name"]], target_is_directory=True)
        env: dict[str, str] = {}
        for item in container["env"]:
            if "value" in item:
                env[item["name"]] = item["value"]
            else:
                path = item["valueFrom"]["fieldRef"]["fieldPath"].removeprefix("metadata.")
                env[item["name"]] = pod["metadata"][path]
        plan = AgentPlan.from_environ(env)
        moved = dataclasses.replace(plan, work=str(root / plan.work.lstrip("/")))
        env[PLAN_VARIABLE] = moved.to_json()
        return env
