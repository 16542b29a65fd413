"""The Kubernetes executor's pipeline services: a Deployment, a Service and a claim each.

The `ServiceRunner` of `KubernetesExecutor.service_runner()`, in the executor's namespace
(`aorta.executors.kubernetes.service_objects` says what the objects are):

- `ensure` creates the service's claim, Service and Deployment unless they exist (a 409 means
  an earlier process made them: they are adopted, never duplicated) and returns once the
  Deployment reports a ready replica, read from a watch of this instance's service
  Deployments, never polled. A watch of their pods ends the wait early when the service's
  container crashed (it restarted, or waits in `CrashLoopBackOff`) or its image cannot be
  pulled; then, or when the Deployment is not ready within the launch's `ready_timeout`, the
  pod's log is kept, the Deployment and Service are deleted and `ServiceFailed` quotes the
  log's last lines.
- `stop` keeps the pod's log, deletes the Deployment and the Service and waits (bounded) for
  the pod to go, so its GPUs are free when it returns; the claim stays for the next start.
- `running` lists the Deployments of this instance's services; `log_lines` reads the pod's log
  while it runs, else the log kept in the blob store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aorta.blobs import BlobStore
from aorta.errors import AortaError, Conflict, Invalid, NotFound
from aorta.executors.kubernetes.service_objects import (
    CONTAINER,
    LOG_KEY_ANNOTATION,
    SERVICE_ID_ANNOTATION,
    SERVICE_LABEL,
    claim_name,
    data_claim,
    endpoint_environment,
    instance_labels,
    service_deployment,
    service_name,
    service_service,
)
from aorta.executors.port import ServiceMount
from aorta.executors.run_log import split_lines
from aorta.executors.service_health import service_failed
from aorta.executors.services import ServiceEndpoint, ServiceFailed, ServiceLaunch
from aorta.kubernetes import names
from aorta.kubernetes.api import DEPLOYMENT, PERSISTENT_VOLUME_CLAIM, POD, SERVICE, Json, KubeApi
from aorta.kubernetes.settings import KubernetesSettings
from aorta.kubernetes.watch import ObjectWatch
from aorta.logger import get_logger

STOP_WAIT = 60.0
"""Seconds `stop` waits for the service's pod to go."""
MAX_LOG_BYTES = 10 << 20
LOG_COPY_INTERVAL = 10.0
"""Seconds between two copies of a running service's pod log to the blob store."""
_FAILED_WAITING = frozenset(
    {
        "CrashLoopBackOff",
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)

_log = get_logger(__name__)


class KubernetesServiceRunner:
    """Runs pipeline services as Deployments in `settings.namespace` (the `ServiceRunner`
    port; module docstring). The API connection belongs to the executor."""

    def __init__(
        self,
        api: KubeApi,
        blobs: BlobStore,
        settings: KubernetesSettings,
        *,
        log_interval: float = LOG_COPY_INTERVAL,
    ) -> None:
        self._api = api
        self._blobs = blobs
        self._settings = settings
        self._log_interval = log_interval
        self._copies: dict[str, asyncio.Task[None]] = {}
        selector = names.selector(instance_labels(settings))
        lasting = settings.watch_timeout
        self.deployments = ObjectWatch(
            api, DEPLOYMENT, settings.namespace, selector, lasting=lasting
        )
        """The live view of this instance's service Deployments."""
        self.pods = ObjectWatch(api, POD, settings.namespace, selector, lasting=lasting)
        """The live view of their pods."""
        self._locks: dict[str, asyncio.Lock] = {}
        self._log_keys: dict[str, str] = {}

    async def ensure(self, launch: ServiceLaunch) -> ServiceEndpoint:
        """Creates (or adopts) the service's objects and returns once its Deployment has a
        ready replica; `ServiceFailed` with its last log lines otherwise."""
        lock = self._locks.setdefault(launch.service_id, asyncio.Lock())
        async with lock:
            self._log_keys[launch.service_id] = launch.log_key
            name = service_name(launch.service_id)
            try:
                manifests = [
                    (PERSISTENT_VOLUME_CLAIM, data_claim(self._settings, launch)),
                    (SERVICE, service_service(self._settings, launch)),
                    (DEPLOYMENT, service_deployment(self._settings, launch)),
                ]
                for kind, manifest in manifests:
                    if manifest is not None:
                        with contextlib.suppress(Conflict):  # made earlier: adopted
                            await self._api.create(kind, self._settings.namespace, manifest)
            except Invalid as error:
                await self._delete(launch.service_id)
                raise ServiceFailed(
                    f"pipeline service {launch.name} could not start", *error.messages
                ) from None
            _log.info("service objects in place", service_id=launch.service_id, deployment=name)
            try:
                async with asyncio.timeout(launch.ready_timeout):
                    failure = await self._ready_or_failed(launch.service_id)
            except TimeoutError:
                failure = f"was not ready within {launch.ready_timeout:g} s"
            if failure is not None:
                log = await self._pod_log(launch.service_id)
                await self._keep(launch.log_key, log)
                await self._delete(launch.service_id)
                _log.warning("service failed", service_id=launch.service_id, reason=failure)
                raise service_failed(launch.name, failure, log)
            _log.info("service ready", service_id=launch.service_id, deployment=name)
            self._copy_log(launch.service_id, launch.log_key)
            return ServiceEndpoint(
                service_id=launch.service_id,
                environment=endpoint_environment(self._settings, launch),
                mounts=tuple(
                    ServiceMount(claim_name(launch.service_id), volume.path)
                    for volume in launch.volumes
                ),
            )

    async def stop(self, service_id: str, *, grace: float) -> None:
        """Keeps the service's log, deletes its Deployment and Service, and waits (at most
        `STOP_WAIT` seconds) for its pod to go; the claim stays."""
        await self._stop_copying(service_id)
        key = self._log_keys.get(service_id) or await self._annotated_log_key(service_id)
        await self._keep(key, await self._pod_log(service_id))
        await self._delete(service_id, grace=max(0, round(grace)))
        label = names.label_value(service_id)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_WAIT):
                await self.pods.synced()
                while any(_labels(p).get(SERVICE_LABEL) == label for p in self.pods.objects()):
                    await self.pods.changed_since(self.pods.version)
        _log.info("service stopped", service_id=service_id)

    async def running(self) -> list[str]:
        """The ids of this instance's services that have a Deployment."""
        listing = await self._api.list(
            DEPLOYMENT, self._settings.namespace, names.selector(instance_labels(self._settings))
        )
        found = (_annotations(item).get(SERVICE_ID_ANNOTATION) for item in listing.items)
        return sorted(service_id for service_id in found if service_id)

    async def log_lines(self, service_id: str) -> AsyncIterator[str]:
        """The service's log: its pod's while one runs, else the one kept in the blob store.
        `NotFound` when neither is known."""
        pod = await self._pod(service_id)
        if pod is not None:
            source = self._api.pod_log(self._settings.namespace, _name(pod), CONTAINER)
            async for line in split_lines(source):
                yield line
            return
        key = self._log_keys.get(service_id)
        if not key:
            raise NotFound(f"the Kubernetes executor has no log of service {service_id}")
        async for line in split_lines(self._blobs.get(key)):
            yield line

    async def close(self) -> None:
        """Ends the watches and the copies of the logs; the services keep running for the
        next runner to adopt."""
        for service_id in list(self._copies):
            await self._stop_copying(service_id)
        await self.deployments.close()
        await self.pods.close()

    def _copy_log(self, service_id: str, key: str) -> None:
        """Copies the service's pod log to the blob store every `log_interval` seconds from
        now on (once per service), so any scheduler replica can read it."""
        copying = self._copies.get(service_id)
        if key and (copying is None or copying.done()):
            self._copies[service_id] = asyncio.create_task(
                self._keep_copying(service_id, key), name=f"aorta-service-log-{service_id}"
            )

    async def _keep_copying(self, service_id: str, key: str) -> None:
        copied = b""
        while True:
            try:
                log = await self._pod_log(service_id)
            except AortaError as error:  # the API is away: try again next time
                _log.warning("service log not copied", service_id=service_id, error=str(error))
                log = b""
            if log and log != copied:
                await self._keep(key, log)
                copied = log
            await asyncio.sleep(self._log_interval)

    async def _stop_copying(self, service_id: str) -> None:
        copying = self._copies.pop(service_id, None)
        if copying is not None:
            copying.cancel()
            await asyncio.gather(copying, return_exceptions=True)

    async def _ready_or_failed(self, service_id: str) -> str | None:
        """None once the service's Deployment has a ready replica; why it failed when its pod
        shows it cannot become ready."""
        name, label = service_name(service_id), names.label_value(service_id)
        await asyncio.gather(self.deployments.synced(), self.pods.synced())
        while True:
            versions = self.deployments.version, self.pods.version
            deployment = self.deployments.get(name)
            if deployment is not None and _ready_replicas(deployment) > 0:
                return None
            for pod in self.pods.objects():
                deleting = (pod.get("metadata") or {}).get("deletionTimestamp")
                if _labels(pod).get(SERVICE_LABEL) == label and not deleting:
                    failure = _pod_failure(pod)
                    if failure is not None:
                        return failure
            await self._changed(*versions)

    async def _changed(self, deployments: int, pods: int) -> None:
        waits = [
            asyncio.ensure_future(self.deployments.changed_since(deployments)),
            asyncio.ensure_future(self.pods.changed_since(pods)),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def _pod(self, service_id: str) -> Json | None:
        label = names.label_value(service_id)
        listing = await self._api.list(POD, self._settings.namespace, f"{SERVICE_LABEL}={label}")
        pods = [pod for pod in listing.items if _owned(pod, self._settings.instance)]
        # The live pod before one still going away (a stopped or replaced one).
        pods.sort(key=lambda pod: not (pod.get("metadata") or {}).get("deletionTimestamp"))
        return pods[-1] if pods else None

    async def _pod_log(self, service_id: str) -> bytes:
        """The log of the service's pod, its last `MAX_LOG_BYTES`; empty when there is none."""
        pod = await self._pod(service_id)
        if pod is None:
            return b""
        kept = b""
        try:
            async for chunk in self._api.pod_log(self._settings.namespace, _name(pod), CONTAINER):
                kept = (kept + chunk)[-MAX_LOG_BYTES:]
        except AortaError as error:
            _log.warning("service log not read", service_id=service_id, error=str(error))
        return kept

    async def _keep(self, key: str, log: bytes) -> None:
        if not key or not log:
            return

        async def chunks() -> AsyncIterator[bytes]:
            yield log

        try:
            await self._blobs.put(key, chunks())
        except (AortaError, OSError) as error:
            _log.warning("service log not kept", key=key, error=str(error))

    async def _annotated_log_key(self, service_id: str) -> str:
        try:
            deployment = await self._api.read(
                DEPLOYMENT, self._settings.namespace, service_name(service_id)
            )
        except NotFound:
            return ""
        return _annotations(deployment).get(LOG_KEY_ANNOTATION, "")

    async def _delete(self, service_id: str, *, grace: int = 0) -> None:
        name = service_name(service_id)
        for kind in (DEPLOYMENT, SERVICE):
            with contextlib.suppress(NotFound):
                await self._api.delete(kind, self._settings.namespace, name, grace=grace)


def _pod_failure(pod: Json) -> str | None:
    """Why the service's pod cannot become ready (its container crashed, or waits on an image
    it cannot have), or None."""
    for status in (pod.get("status") or {}).get("containerStatuses") or ():
        state = status.get("state") or {}
        waiting = state.get("waiting") or {}
        terminated = state.get("terminated") or (status.get("lastState") or {}).get("terminated")
        if terminated:
            return f"exited at start with status {terminated.get('exitCode', '?')}"
        if int(status.get("restartCount") or 0) > 0:
            return "restarted at start"
        if waiting.get("reason") in _FAILED_WAITING:
            return f"cannot start: {waiting['reason']} {waiting.get('message', '')}".rstrip()
    return None


def _ready_replicas(deployment: Json) -> int:
    return int((deployment.get("status") or {}).get("readyReplicas") or 0)


def _labels(obj: Json) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def _annotations(obj: Json) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def _name(obj: Json) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _owned(pod: Json, instance: str) -> bool:
    return _labels(pod).get(names.INSTANCE) == instance
