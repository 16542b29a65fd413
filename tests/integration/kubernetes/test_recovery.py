"""What only the stand-in can make happen on demand: an expired watch, a pod name taken by
another run, a pod deleted behind the platform's back. The pods here have no play: the test
moves them itself, as a kubelet would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from typing import cast

import pytest

from aorta.blobs import BlobInfo, BlobStore
from aorta.errors import Unavailable
from aorta.executors.kubernetes.executor import (
    OUTCOMES_ROOT,
    KubernetesExecutor,
    agent_environment,
)
from aorta.executors.kubernetes.pods import (
    FETCH_CONTAINER,
    OPERATOR_CONTAINER,
    PUSH_CONTAINER,
    operator_pod,
)
from aorta.executors.port import KnownRuns, OperatorRun, RunReason
from aorta.kubernetes import names
from aorta.kubernetes.api import POD
from aorta.testing.kube_api import KubeApiServer
from tests.integration.kubernetes.k8s_cluster import NAMESPACE, Cluster
from tests.integration.kubernetes.k8s_kubelet import (
    Play,
    running,
    set_pod_phase,
    terminated,
    waiting,
)

pytestmark = pytest.mark.timeout(30)

DONE = {OPERATOR_CONTAINER: terminated(0), PUSH_CONTAINER: terminated(0)}
FETCHED = {FETCH_CONTAINER: terminated(0)}


def unplayed(cluster: Cluster) -> tuple[KubeApiServer, OperatorRun, str]:
    """The stand-in, a run the simulated kubelet leaves alone, and the run's pod name."""
    run = cluster.run(Play())
    assert cluster.kubelet is not None and cluster.server is not None
    del cluster.kubelet.plays[run.run_id]
    return cluster.server, run, names.pod_name(run.job_id, run.operator, 0)


async def test_a_watch_resumed_from_an_expired_version_lists_again(stand_in: Cluster) -> None:
    server, run, pod = unplayed(stand_in)
    executor = stand_in.executor()
    await executor.start(run)
    await executor.pods.synced()
    while executor.pods.get(pod) is None:
        await executor.pods.changed_since(executor.pods.version)
    # The waiter finds the pod in the watch's view, so it waits on the watch alone.
    waiter = asyncio.create_task(executor.wait(run.run_id))
    await asyncio.sleep(0.05)

    # The watch ends; the pod finishes while no watch is open; the server forgets that history.
    server.end_watches()
    set_pod_phase(server, NAMESPACE, pod, "Succeeded", DONE, init={FETCH_CONTAINER: terminated(0)})
    server.compact()

    outcome = await asyncio.wait_for(waiter, 30)
    assert outcome.reason is RunReason.COMPLETED
    assert server.expired == 1
    assert executor.pods.relists == 2  # the first list, then one after the 410


async def test_a_pod_name_held_by_another_run_fails_to_start(stand_in: Cluster) -> None:
    server, run, pod = unplayed(stand_in)
    squatter = operator_pod(run, stand_in.settings, {})
    squatter["metadata"]["annotations"][names.RUN_ID_ANNOTATION] = "someone-else"
    await stand_in.api.create(POD, NAMESPACE, squatter)
    executor = stand_in.executor()

    await executor.start(run)
    outcome = await executor.wait(run.run_id)

    assert outcome.reason is RunReason.START_FAILED
    assert "someone-else" in outcome.message
    assert server.get("pods", NAMESPACE, pod) is not None  # never touched


async def test_a_pod_deleted_outside_the_platform_is_lost(stand_in: Cluster) -> None:
    _, run, pod = unplayed(stand_in)
    executor = stand_in.executor()
    await executor.start(run)
    waiter = asyncio.create_task(executor.wait(run.run_id))
    await executor.pods.synced()

    await stand_in.api.delete(POD, NAMESPACE, pod, grace=0)

    outcome = await asyncio.wait_for(waiter, 30)
    assert outcome.reason is RunReason.LOST
    assert "deleted outside Aorta" in outcome.message


async def test_an_image_that_cannot_be_pulled_fails_to_start(stand_in: Cluster) -> None:
    server, run, pod = unplayed(stand_in)
    executor = stand_in.executor()
    await executor.start(run)
    states = {
        OPERATOR_CONTAINER: waiting("ImagePullBackOff", 'Back-off pulling image "busybox:1.36"'),
        PUSH_CONTAINER: running(),
    }

    set_pod_phase(server, NAMESPACE, pod, "Pending", states, init={FETCH_CONTAINER: terminated(0)})
    outcome = await asyncio.wait_for(executor.wait(run.run_id), 10)

    assert outcome.reason is RunReason.START_FAILED
    assert "ImagePullBackOff" in outcome.message and "busybox:1.36" in outcome.message
    assert server.get("pods", NAMESPACE, pod) is None  # removed once its outcome was read
    # No sidecar stored a log: the executor wrote why the run ended where the log belongs.
    log = [line async for line in executor.log_lines(run.run_id)]
    assert log == [f"[aorta] start_failed: {outcome.message}"]


class RecordsRefused:
    """A blob store that takes everything but outcome records, as if it failed just then."""

    def __init__(self, inner: BlobStore) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> BlobInfo:
        if key.startswith(OUTCOMES_ROOT):
            raise Unavailable("the blob store is not answering")
        return await self._inner.put(key, chunks)


async def test_an_outcome_that_could_not_be_recorded_keeps_its_pod(stand_in: Cluster) -> None:
    server, run, pod = unplayed(stand_in)
    refused = cast(BlobStore, RecordsRefused(stand_in.blobs))
    first = KubernetesExecutor(
        stand_in.api, refused, stand_in.settings, agent_environment(stand_in.core)
    )
    stand_in.executors.append(first)
    await first.start(run)
    set_pod_phase(server, NAMESPACE, pod, "Succeeded", DONE, init=FETCHED)

    assert (await first.wait(run.run_id)).reason is RunReason.COMPLETED
    assert server.get("pods", NAMESPACE, pod) is not None  # it stands for the record
    await first.close()  # the scheduler dies before recording the outcome

    second = stand_in.executor()
    assert await second.running() == KnownRuns(live=(run.run_id,))
    assert (await second.wait(run.run_id)).reason is RunReason.COMPLETED
    assert server.get("pods", NAMESPACE, pod) is None  # recorded now, then deleted
    assert await stand_in.executor().running() == KnownRuns(ended=(run.run_id,))  # a record
    assert server.creates.count(("pods", pod)) == 1
