"""The Kubernetes executor end to end: pods created through the client's whole stack, played by
the simulated kubelet (or a real cluster), with the agent moving bytes through the blob store."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest

from aorta.blobs import BlobStore
from aorta.errors import NotFound
from aorta.executors.port import KnownRuns, RunReason, VolumeBinding
from aorta.kubernetes import names
from aorta.kubernetes.api import POD, Json
from aorta.payload_layout import input_prefix, operator_output_prefix
from tests.integration.kubernetes.k8s_cluster import Cluster
from tests.integration.kubernetes.k8s_kubelet import Play

pytestmark = pytest.mark.timeout(60)


async def put_text(blobs: BlobStore, key: str, text: str) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield text.encode()

    await blobs.put(key, chunks())


async def read_text(blobs: BlobStore, key: str) -> str:
    return b"".join([chunk async for chunk in blobs.get(key)]).decode()


async def listing(blobs: BlobStore, prefix: str) -> dict[str, str]:
    keys = [info.key async for info in blobs.list(prefix)]
    return {key[len(prefix) :]: await read_text(blobs, key) for key in keys}


async def pod_of(cluster: Cluster, run_id: str) -> Json | None:
    selector = f"{names.RUN_LABEL}={names.label_value(run_id)}"
    found = await cluster.api.list(POD, cluster.settings.namespace, selector)
    return found.items[0] if found.items else None


async def until_running(cluster: Cluster, run_id: str) -> Json:
    """The run's pod once its operator container runs (or, without a node for it, is pending)."""
    while True:
        pod = await pod_of(cluster, run_id)
        statuses = (pod or {}).get("status", {}).get("containerStatuses") or []
        if any("running" in s.get("state", {}) for s in statuses):
            assert pod is not None
            return pod
        await asyncio.sleep(0.05)


async def test_a_run_fetches_inputs_runs_and_stores_outputs_and_log(cluster: Cluster) -> None:
    run = cluster.run(Play(log="reading\nsegmenting", write={"mask.txt": "lungs"}))
    await put_text(cluster.blobs, input_prefix(run.payload_id) + "scan/a.dcm", "A")
    await put_text(cluster.blobs, input_prefix(run.payload_id) + "b.dcm", "B")
    executor = cluster.executor()

    await executor.start(run)
    pod = await pod_of(cluster, run.run_id)
    outcome = await executor.wait(run.run_id)

    assert outcome.reason is RunReason.COMPLETED, outcome.message
    assert outcome.exit_code == 0
    assert pod is not None
    assert pod["metadata"]["name"] == names.pod_name(run.job_id, run.operator, 0)
    assert pod["metadata"]["labels"][names.MANAGED_BY] == "aorta"
    assert pod["metadata"]["annotations"][names.RUN_ID_ANNOTATION] == run.run_id
    operator = pod["spec"]["containers"][0]
    env = {item["name"]: item.get("value") for item in operator["env"]}
    assert env["NVIDIA_CLARA_INPUTPATHS"] == "payload:/input"
    assert env["NVIDIA_CLARA_OUTPUTPATHS"] == "reader:/output"
    assert env["NVIDIA_CLARA_JOBID"] == run.job_id
    limits = operator["resources"]["limits"]
    assert (limits["cpu"], limits["memory"]) in {("1000m", "256Mi"), ("1", "256Mi")}
    assert [c["args"] for c in pod["spec"]["initContainers"]] == [["agent", "fetch"]]
    outputs = await listing(cluster.blobs, operator_output_prefix(run.payload_id, "reader", None))
    assert outputs == {"scan/a.dcm": "A", "b.dcm": "B", "mask.txt": "lungs"}
    log = (await read_text(cluster.blobs, run.log_key)).splitlines()
    assert log[:2] == ["reading", "segmenting"]
    assert log[-1].startswith("[aorta] exited with code 0; outputs stored (3 files")
    assert await pod_of(cluster, run.run_id) is None  # deleted once its outcome was read
    assert await executor.wait(run.run_id) == outcome


async def test_a_gpu_operator_pod_requests_a_gpu_and_tolerates_gpu_nodes(cluster: Cluster) -> None:
    run = cluster.run(Play(hang=True), operator="infer", gpu=1)
    executor = cluster.executor()

    await executor.start(run)
    pod = await pod_of(cluster, run.run_id)
    await executor.cancel(run.run_id, grace=1)

    assert pod is not None
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == "1"
    assert resources["requests"]["nvidia.com/gpu"] == "1"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["spec"][
        "tolerations"
    ]
    env = {item["name"] for item in pod["spec"]["containers"][0]["env"]}
    assert "NVIDIA_VISIBLE_DEVICES" not in env
    assert (await executor.wait(run.run_id)).reason is RunReason.CANCELLED


async def test_cancel_deletes_the_pod_with_its_grace_period(cluster: Cluster) -> None:
    run = cluster.run(Play(log="working", hang=True))
    executor = cluster.executor()
    await executor.start(run)
    await until_running(cluster, run.run_id)
    assert await executor.running() == KnownRuns(live=(run.run_id,))

    await executor.cancel(run.run_id, grace=3)

    outcome = await executor.wait(run.run_id)
    assert outcome.reason is RunReason.CANCELLED
    assert await pod_of(cluster, run.run_id) is None
    assert await executor.running() == KnownRuns()
    if cluster.server is not None:
        assert ("pods", names.pod_name(run.job_id, "reader", 0), 3) in cluster.server.deletions


async def test_a_run_past_its_timeout_ends_as_timeout_with_its_log(cluster: Cluster) -> None:
    run = cluster.run(Play(log="still going", hang=True), timeout=1)
    executor = cluster.executor()
    await executor.start(run)

    outcome = await executor.wait(run.run_id)

    assert outcome.reason is RunReason.TIMEOUT
    assert "timeout of 1 s" in outcome.message
    log = await read_text(cluster.blobs, run.log_key)
    assert log.startswith("still going\n")
    assert "[aorta]" in log.splitlines()[-1]


async def test_a_failing_operator_stores_its_log_but_not_its_outputs(cluster: Cluster) -> None:
    run = cluster.run(Play(log="bad input", write={"partial.txt": "x"}, exit_code=3))
    executor = cluster.executor()
    await executor.start(run)

    outcome = await executor.wait(run.run_id)

    assert (outcome.reason, outcome.exit_code) == (RunReason.FAILED, 3)
    assert outcome.message.startswith("exited with code 3")
    prefix = operator_output_prefix(run.payload_id, "reader", None)
    assert await listing(cluster.blobs, prefix) == {}
    log = (await read_text(cluster.blobs, run.log_key)).splitlines()
    assert log == ["bad input", "[aorta] exited with code 3 (Error); outputs not stored"]


async def test_an_operator_killed_for_its_memory_says_so(cluster: Cluster) -> None:
    run = cluster.run(Play(oom=True))
    executor = cluster.executor()
    await executor.start(run)

    outcome = await executor.wait(run.run_id)

    assert (outcome.reason, outcome.exit_code) == (RunReason.FAILED, 137)
    assert "OOMKilled" in outcome.message and "256Mi" in outcome.message


async def test_a_restarted_executor_adopts_the_running_pod(cluster: Cluster) -> None:
    # Runs until adopted (on the stand-in; a real cluster's pod sleeps a second).
    release, sleep = asyncio.Event(), 1.0 if cluster.kind == "real" else 0.0
    run = cluster.run(Play(sleep=sleep, write={"done.txt": "yes"}, release=release))
    first = cluster.executor()
    await first.start(run)
    await until_running(cluster, run.run_id)
    await first.close()

    second = cluster.executor()
    assert await second.running() == KnownRuns(live=(run.run_id,))
    await second.start(run)  # the scheduler's reconcile starts it again: adopted, not doubled
    await second.close()
    release.set()
    third = cluster.executor()  # one that only waits: the pod tells it all
    outcome = await third.wait(run.run_id)

    assert outcome.reason is RunReason.COMPLETED, outcome.message
    prefix = operator_output_prefix(run.payload_id, "reader", None)
    assert await listing(cluster.blobs, prefix) == {"done.txt": "yes"}
    log = [line async for line in third.log_lines(run.run_id)]  # its pod is gone by now
    assert log[-1].startswith("[aorta] exited with code 0; outputs stored")
    if cluster.server is not None:
        name = names.pod_name(run.job_id, "reader", 0)
        assert cluster.server.creates.count(("pods", name)) == 2  # the second one got a 409


async def test_a_run_that_ended_before_its_scheduler_recorded_it_never_runs_again(
    cluster: Cluster,
) -> None:
    run = cluster.run(Play(write={"done.txt": "once"}))
    first = cluster.executor()
    await first.start(run)
    assert (await first.wait(run.run_id)).reason is RunReason.COMPLETED
    # A leader that lost its lease before it recorded the outcome, and took it again.
    assert await first.running() == KnownRuns(ended=(run.run_id,))
    # The scheduler dies here, before it recorded the outcome; the pod is gone already.
    await first.close()
    assert await pod_of(cluster, run.run_id) is None

    second = cluster.executor()
    # Listed, so the restarted scheduler adopts it.
    assert await second.running() == KnownRuns(ended=(run.run_id,))
    await second.start(run)  # and should it start it again, no pod is made
    outcome = await second.wait(run.run_id)

    assert (outcome.reason, outcome.exit_code) == (RunReason.COMPLETED, 0), outcome.message
    assert await pod_of(cluster, run.run_id) is None
    if cluster.server is not None:
        name = names.pod_name(run.job_id, "reader", 0)
        assert cluster.server.creates.count(("pods", name)) == 1
    await second.cancel(run.run_id, grace=0)  # an ended run: nothing to stop
    assert (await cluster.executor().wait(run.run_id)) == outcome


async def test_log_lines_come_from_the_api_while_running_then_from_the_store(
    cluster: Cluster,
) -> None:
    # Runs until its log was read (on the stand-in; a real cluster's pod sleeps 1.5 s).
    release, sleep = asyncio.Event(), 1.5 if cluster.kind == "real" else 0.0
    run = cluster.run(Play(log="one\ntwo", sleep=sleep, release=release))
    executor = cluster.executor()
    await executor.start(run)
    await until_running(cluster, run.run_id)
    await asyncio.sleep(0.5 if cluster.kind == "real" else 0)

    assert [line async for line in executor.log_lines(run.run_id)] == ["one", "two"]

    release.set()
    assert (await executor.wait(run.run_id)).reason is RunReason.COMPLETED
    stored = [line async for line in executor.log_lines(run.run_id)]
    assert stored[:2] == ["one", "two"]
    assert stored[2].startswith("[aorta] exited with code 0; outputs stored")


async def test_paths_that_overlap_fail_to_start_without_a_pod(cluster: Cluster) -> None:
    run = cluster.run(Play())
    bad = dataclasses.replace(run, outputs=(VolumeBinding("reader", "/input/out", "p/"),))
    executor = cluster.executor()

    await executor.start(bad)
    outcome = await executor.wait(bad.run_id)

    assert outcome.reason is RunReason.START_FAILED
    assert "overlap" in outcome.message
    assert await pod_of(cluster, bad.run_id) is None


async def test_unknown_runs_are_lost_and_have_no_log(cluster: Cluster) -> None:
    executor = cluster.executor()

    outcome = await executor.wait("f" * 32 + "-nobody-0")

    assert outcome.reason is RunReason.LOST
    with pytest.raises(NotFound):
        _ = [line async for line in executor.log_lines("f" * 32 + "-nobody-0")]
