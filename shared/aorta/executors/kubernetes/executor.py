"""The Kubernetes executor: one pod per operator run (the `Executor` port).

- `start` creates the run's pod (`aorta.executors.kubernetes.pods`) under a name that depends
  only on (job, operator, attempt); a 409 Conflict means a previous process made it: the pod is
  adopted, never duplicated.
- Completion comes from one pod watch per executor (`ObjectWatch`), never from polling; the
  outcome from the operator container's terminated state (`kubernetes_outcome`).
- Once an outcome is read it is recorded in the blob store for a day
  (`aorta.executors.outcome_records.BlobOutcomeRecords`, under `outcomes/kubernetes/<instance>/`),
  and only then is the pod deleted (unless `AORTA_K8S_KEEP_PODS`). Its log is in the blob store
  by then: the push sidecar stores it, and when the sidecar could not (a deadline, a crash) the
  executor copies it from the API first. A record that cannot be written keeps the pod, which
  stands for it.
- `cancel` deletes the pod with a grace period; `running` lists the pods by label, finished
  ones whose outcome was not read yet included, and the recorded runs, so a restarted scheduler
  adopts them and reads their outcome (`wait` answers from the record once the pod is gone)
  instead of running them again. `start` of a recorded run creates no pod. Runs keep going
  across `close`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing, suppress
from dataclasses import replace

from aorta.blobs import BlobStore
from aorta.errors import AortaError, Conflict, Invalid, NotFound, Unavailable
from aorta.executors.kubernetes.outcome import is_finished, pod_outcome, pod_times
from aorta.executors.kubernetes.pods import (
    LOG_KEY_ANNOTATION,
    OPERATOR_CONTAINER,
    PUSH_CONTAINER,
    held_deadline,
    operator_pod,
)
from aorta.executors.kubernetes.services import KubernetesServiceRunner
from aorta.executors.outcome_records import BlobOutcomeRecords
from aorta.executors.port import KnownRuns, OperatorRun, RunOutcome, RunReason
from aorta.executors.run_log import NOTE_PREFIX, split_lines
from aorta.kubernetes import names
from aorta.kubernetes.api import POD, Json, KubeApi
from aorta.kubernetes.settings import KubernetesSettings
from aorta.kubernetes.watch import ObjectWatch
from aorta.logger import get_logger
from aorta.settings import Settings

DEFAULT_FINISHED_RUNS_KEPT = 10_000
OUTCOMES_ROOT = "outcomes/kubernetes/"
"""Where the outcome records of each instance's runs are kept: `<root><instance>/`."""

_log = get_logger(__name__)


def agent_environment(settings: Settings) -> dict[str, str]:
    """What the agent containers need to open the same blob store as the platform.

    Never the credentials: the pod takes those from the Secret `AORTA_K8S_BLOB_SECRET` names.
    """
    return {
        "AORTA_BLOB_STORE": settings.blob_store,
        "AORTA_S3_ENDPOINT": settings.s3_endpoint,
        "AORTA_S3_SECURE": "true" if settings.s3_secure else "false",
        "AORTA_S3_REGION": settings.s3_region,
        "AORTA_LOG_FORMAT": "json",
        "AORTA_LOG_LEVEL": settings.log_level,
    }


class KubernetesExecutor:
    """Runs operator runs as pods in `settings.namespace` (see the module docstring).

    - `api`: the cluster connection; closed by `close` when `owns_api`.
    - `blobs`: where finished runs' logs are read from (and copied to when the sidecar could not).
    - `agent_env`: the agent containers' blob store settings (`agent_environment`).
    - `finished_runs_kept`: how many outcomes `wait` still answers once their pods are gone.

    Use from one event loop. Every method may raise `Unavailable` when the API cannot be reached
    (retrying is safe: each is idempotent).
    """

    def __init__(
        self,
        api: KubeApi,
        blobs: BlobStore,
        settings: KubernetesSettings,
        agent_env: Mapping[str, str],
        *,
        owns_api: bool = False,
        finished_runs_kept: int = DEFAULT_FINISHED_RUNS_KEPT,
    ) -> None:
        self._api = api
        self._blobs = blobs
        self._settings = settings
        self._agent_env = dict(agent_env)
        self._owns_api = owns_api
        self._kept = finished_runs_kept
        self._selector = names.selector(
            names.base_labels(settings.instance, names.OPERATOR_COMPONENT)
        )
        self.pods = ObjectWatch(
            api, POD, settings.namespace, self._selector, lasting=settings.watch_timeout
        )
        """The live view of this instance's operator pods."""
        self._outcomes: OrderedDict[str, RunOutcome] = OrderedDict()
        self._log_keys: dict[str, str] = {}
        self._cancelled: set[str] = set()
        self._records = BlobOutcomeRecords(blobs, f"{OUTCOMES_ROOT}{settings.instance}/")
        self._recorded: set[str] = set()
        """Run ids `running` found recorded and `wait` has not read yet: ended, no pod."""
        self._services: KubernetesServiceRunner | None = None
        self._closed = False

    @classmethod
    async def open(
        cls, settings: Settings, kubernetes: KubernetesSettings, blobs: BlobStore
    ) -> KubernetesExecutor:
        """Connects to the cluster `kubernetes` names; the executor owns the connection."""
        api = await KubeApi.connect(kubernetes.kubeconfig, kubernetes.context)
        return cls(api, blobs, kubernetes, agent_environment(settings), owns_api=True)

    def service_runner(self) -> KubernetesServiceRunner:
        """The runner of the pipeline services operators of this executor reach: Deployments
        in the same namespace (`aorta.executors.kubernetes.services`). The same runner on
        every call; `close` closes it."""
        if self._services is None:
            self._services = KubernetesServiceRunner(self._api, self._blobs, self._settings)
        return self._services

    async def start(self, run: OperatorRun) -> None:
        """Creates the run's pod, or adopts the one a previous process created for it.

        Returns once the API accepted the pod; a run the cluster refuses (a malformed image
        name, paths that overlap, a pod name held by another run) is reported by `wait` as
        START_FAILED. A run whose outcome is recorded ended under an earlier process (its pod
        is gone): no pod is made, `wait` answers the record. `Unavailable` when the API or the
        blob store cannot be reached or the executor is closed.
        """
        if self._closed:
            raise Unavailable("the Kubernetes executor is closed")
        if run.run_id in self._outcomes:
            return
        recorded = await self._records.read(run.run_id)
        if recorded is not None:
            self._record(recorded)  # never run a finished operator again
            return
        self.pods.start()
        try:
            manifest = operator_pod(
                run, self._settings, self._agent_env, pipeline_pull_secrets=run.pull_secrets
            )
            try:
                await self._api.create(POD, self._settings.namespace, manifest)
                _log.info("operator pod created", run_id=run.run_id, pod=_name(manifest))
            except Conflict:
                await self._adopt(run, _name(manifest))
        except Invalid as error:
            self._record(RunOutcome(run.run_id, RunReason.START_FAILED, message=str(error)))
            return
        self._log_keys[run.run_id] = run.log_key

    async def wait(self, run_id: str) -> RunOutcome:
        """The run's outcome once its pod finished and its outputs and log are stored: from the
        pod, else from the outcome records (the pod was deleted once its outcome was recorded);
        LOST for a run id that has neither (never started, or deleted outside Aorta).

        Cancelling the waiter leaves the pod running.
        """
        known = self._outcomes.get(run_id)
        if known is not None:
            return known
        await self.pods.synced()
        while True:
            version = self.pods.version
            pod = await self._pod_of(run_id)
            if pod is None:
                recorded = await self._records.read(run_id)
                if recorded is not None:
                    self._record(recorded)
                    return recorded
            if pod is None and run_id not in self._log_keys:
                return RunOutcome(
                    run_id, RunReason.LOST, message=f"no operator pod carries run {run_id}"
                )
            outcome = pod_outcome(pod, run_id, cancelled=run_id in self._cancelled)
            if outcome is not None:
                return await self._finish(run_id, pod, outcome)
            if pod is not None:
                await self._hold_to_timeout(pod)
            await self.pods.changed_since(version)

    async def cancel(self, run_id: str, *, grace: float) -> None:
        """Deletes the run's pod with `grace` seconds for its containers to stop, and returns
        once it ended (`wait` then says CANCELLED). Nothing happens for an unknown or finished
        run, or for one whose operator already exited 0 (its outputs are being stored)."""
        if run_id in self._outcomes or run_id in self._recorded:
            return
        pod = await self._pod_of(run_id)
        if pod is None or is_finished(pod):
            return
        operator = _container_state(pod, OPERATOR_CONTAINER).get("terminated") or {}
        if operator.get("exitCode") == 0:
            return
        self._cancelled.add(run_id)
        # A pod gone already is as good: `wait` says CANCELLED all the same.
        with suppress(NotFound):
            await self._api.delete(
                POD, self._settings.namespace, _name(pod), grace=math.ceil(max(grace, 0.0))
            )
        _log.info("operator pod deleted", run_id=run_id, pod=_name(pod), grace=grace)
        await self.wait(run_id)

    async def running(self) -> KnownRuns:
        """`live`: the runs whose pods exist now, from the API itself: pending, running, or
        ended with an outcome not read yet (a pod is deleted once read, unless `keep_pods`).
        `ended`: the runs whose outcome was recorded in the last day, which may have ended
        before the scheduler recorded them.

        A pod that ended while no scheduler watched it (a restart, a lease changing hands),
        and a run recorded just before its scheduler died or stepped down, must be waited for,
        which reads its outcome, not run again as a new attempt; that holds for the runs this
        process ended too (a leader that lost its lease and took it again).
        """
        listing = await self._api.list(POD, self._settings.namespace, self._selector)
        listed = (_annotation(pod, names.RUN_ID_ANNOTATION) for pod in listing.items)
        pods = [run_id for run_id in listed if run_id and run_id not in self._outcomes]
        recorded = await self._records.run_ids()
        self._recorded = {run_id for run_id in recorded if run_id not in self._outcomes}
        return KnownRuns(tuple(pods), tuple(sorted(set(recorded) - set(pods))))

    async def log_lines(self, run_id: str) -> AsyncIterator[str]:
        """The lines the run wrote so far: from the API while the pod runs, from the blob
        store once the sidecar stored them. Nothing while the operator has not started;
        `NotFound`, on the first iteration, for an unknown run or a log never stored."""
        pod = await self._pod_of(run_id)
        if pod is not None and not _pushed(pod):
            source: AsyncIterator[bytes] = self._api_log(pod)
        else:
            key = _annotation(pod, LOG_KEY_ANNOTATION) if pod else self._log_keys.get(run_id)
            if not key:
                raise NotFound(f"the Kubernetes executor knows no log of run {run_id}")
            source = self._blobs.get(key)
        async with aclosing(split_lines(source)) as lines:
            async for line in lines:
                yield line

    async def close(self) -> None:
        """Stops watching and closes the connection; pods keep running (a restarted executor
        adopts them). Later `start` calls raise `Unavailable`. Idempotent."""
        self._closed = True
        await self.pods.close()
        if self._services is not None:
            await self._services.close()
        if self._owns_api:
            self._owns_api = False
            await self._api.close()

    async def _adopt(self, run: OperatorRun, name: str) -> None:
        try:
            existing = await self._api.read(POD, self._settings.namespace, name)
        except NotFound:
            # Deleted between our create and this read: the next `start` creates it afresh.
            raise Unavailable(f"pod {name} vanished while being adopted; start again") from None
        owner = _annotation(existing, names.RUN_ID_ANNOTATION)
        if owner != run.run_id:
            message = f"pod {name} already exists for run {owner!r}, not {run.run_id!r}"
            raise Invalid(message)
        _log.info("operator pod adopted", run_id=run.run_id, pod=name)

    async def _pod_of(self, run_id: str) -> Json | None:
        """The run's pod from the view, else (the view may lag) from the API, else None."""
        label = names.label_value(run_id)
        for pod in self.pods.objects():
            if _labels(pod).get(names.RUN_LABEL) == label and _owned_by(pod, run_id):
                return pod
        selector = f"{self._selector},{names.RUN_LABEL}={label}"
        listing = await self._api.list(POD, self._settings.namespace, selector)
        return next((pod for pod in listing.items if _owned_by(pod, run_id)), None)

    async def _hold_to_timeout(self, pod: Json) -> None:
        """Once the operator started, ends the pod one stage timeout after that start."""
        deadline = held_deadline(pod)
        if deadline is None:
            return
        patch = {"spec": {"activeDeadlineSeconds": deadline}}
        with suppress(NotFound):  # a pod gone meanwhile needs no deadline
            await self._api.patch(POD, self._settings.namespace, _name(pod), patch)
        _log.info("operator deadline set from its start", pod=_name(pod), deadline=deadline)

    async def _finish(self, run_id: str, pod: Json | None, outcome: RunOutcome) -> RunOutcome:
        known = self._outcomes.get(run_id)
        if known is not None:
            return known  # another waiter finished it meanwhile
        if pod is not None:
            outcome = replace(outcome, times=pod_times(pod))
            # A pod adopted after a restart tells where its log is; it is needed once it is gone.
            self._log_keys.setdefault(run_id, _annotation(pod, LOG_KEY_ANNOTATION))
            if not _pushed(pod):
                await self._save_log(pod, outcome)
            # The record first: a crash after the deletion then still finds the outcome. A
            # cancelled run needs none: its job is stopping.
            cancelled = outcome.reason is RunReason.CANCELLED
            recorded = cancelled or await self._recorded_durably(outcome)
            if recorded and not self._settings.keep_pods:
                with suppress(NotFound):
                    await self._api.delete(POD, self._settings.namespace, _name(pod), grace=0)
        self._record(outcome)
        _log.info("operator run ended", run_id=run_id, reason=outcome.reason.value)
        return self._outcomes.get(run_id, outcome)

    async def _recorded_durably(self, outcome: RunOutcome) -> bool:
        """Writes the outcome where an executor started after a crash finds it; False when the
        blob store would not take it (the pod then stays, as the record of the run)."""
        try:
            await self._records.write(outcome)
        except AortaError as error:
            _log.warning("run outcome not recorded", run_id=outcome.run_id, error=str(error))
            return False
        return True

    async def _save_log(self, pod: Json, outcome: RunOutcome) -> None:
        """Copies the operator's log from the API to the blob store, with a closing note."""
        key = _annotation(pod, LOG_KEY_ANNOTATION)
        if not key:
            return

        async def chunks() -> AsyncIterator[bytes]:
            ends_line = True
            state = _container_state(pod, OPERATOR_CONTAINER)
            if "running" in state or "terminated" in state:
                async for chunk in self._api_log(pod):
                    if chunk:
                        ends_line = chunk.endswith(b"\n")
                        yield chunk
            summary = outcome.message.splitlines()[0] if outcome.message else ""
            note = f"{NOTE_PREFIX}{outcome.reason.value}: {summary}\n".encode()
            yield note if ends_line else b"\n" + note

        try:
            await self._blobs.put(key, chunks())
        except (NotFound, Unavailable) as error:
            _log.warning("operator log not saved", pod=_name(pod), error=str(error))

    async def _api_log(self, pod: Json) -> AsyncIterator[bytes]:
        """The operator container's log; nothing when it has not started (or is gone)."""
        try:
            async for chunk in self._api.pod_log(
                self._settings.namespace, _name(pod), OPERATOR_CONTAINER
            ):
                yield chunk
        except (Invalid, NotFound):
            return

    def _record(self, outcome: RunOutcome) -> None:
        self._outcomes[outcome.run_id] = outcome
        self._cancelled.discard(outcome.run_id)
        self._recorded.discard(outcome.run_id)
        while len(self._outcomes) > self._kept:
            forgotten, _ = self._outcomes.popitem(last=False)
            self._log_keys.pop(forgotten, None)


def _name(obj: Json) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _labels(obj: Json) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def _annotation(obj: Json | None, key: str) -> str:
    if obj is None:
        return ""
    return str(((obj.get("metadata") or {}).get("annotations") or {}).get(key, ""))


def _owned_by(pod: Json, run_id: str) -> bool:
    return _annotation(pod, names.RUN_ID_ANNOTATION) == run_id


def _container_state(pod: Json, container: str) -> Json:
    for status in (pod.get("status") or {}).get("containerStatuses") or ():
        if status.get("name") == container:
            state: Json = status.get("state") or {}
            return {key: value for key, value in state.items() if value}
    return {}


def _pushed(pod: Json) -> bool:
    """Whether the push sidecar ended successfully: the log (and outputs) are in the store."""
    terminated = _container_state(pod, PUSH_CONTAINER).get("terminated") or {}
    return terminated.get("exitCode") == 0
