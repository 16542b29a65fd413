"""Why a job waits, through the scheduler's verbs: a GPU job behind another names it until it
runs, jobs behind a hold name the job the node drains for, the queue lists them in admission
order, and a `user` sees other users' jobs there only as places and, in its own jobs' reasons,
without their ids, where a viewer and an admin see every id."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aorta import subjects
from aorta.api import aorta_jobs_pb2, jobs_pb2
from aorta.auth.principal import Principal, Role
from aorta.wait_reasons import is_wait_line
from tests.unit.scheduler.scheduler_fakes import Behaviour
from tests.unit.scheduler.scheduler_harness import PIPELINE_ID, Harness, single

GPU_ENV = {"AORTA_SCHEDULER_GPUS": "1"}
P = jobs_pb2
ALICE = Principal("alice", frozenset({Role.USER}))
BOB = Principal("bob", frozenset({Role.USER}))
VIEWER = Principal("vera", frozenset({Role.VIEWER}))
ADMIN = Principal("ada", frozenset({Role.ADMIN}))


async def queue(harness: Harness) -> list[aorta_jobs_pb2.JobsQueueEntry]:
    stream = harness.client.request_stream(
        subjects.SCHEDULER_QUEUE,
        aorta_jobs_pb2.JobsQueueRequest().SerializeToString(),
        headers=harness.headers,
    )
    replies = [aorta_jobs_pb2.JobsQueueResponse.FromString(item) async for item in stream]
    assert replies and all(reply.header.code == 0 for reply in replies)
    return [reply.entry for reply in replies if reply.HasField("entry")]


async def reason_of(
    harness: Harness, job_id: str, kind: str, within: float = 60.0
) -> tuple[jobs_pb2.JobsStatusResponse, dict[str, Any]]:
    """The job's Status and its own typed reason, once that reason is of `kind`."""
    deadline = time.monotonic() + within
    while True:
        answer = await harness.owned_status(job_id)
        reason = json.loads(answer.waiting or "{}").get("job", {})
        if reason.get("kind") == kind:
            return answer.status, reason
        assert time.monotonic() < deadline, f"job {job_id} never waited for {kind}: {reason}"
        await asyncio.sleep(0.02)


async def test_a_second_gpu_job_names_the_first_until_it_runs(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "gpu", {"g.yaml": single(requests="{gpu: 1}")})
    await harness.replica(GPU_ENV, behaviours={"only": Behaviour(hang=True)})
    first = await harness.run("first")
    await harness.until(first, lambda s: s.state == P.JOB_STATE_RUNNING)
    second = await harness.run("second")
    status, reason = await reason_of(harness, second, "resources")
    assert reason["resource"] == "gpu" and reason["needed"] == 1 and reason["capacity"] == 1
    assert [(h["job_id"], h["operator"]) for h in reason["holders"]] == [(first, "only")]
    words = f"waiting: needs 1 GPU; the node has 1, held by job {first} (operator only) since "
    assert next(line for line in status.messages if is_wait_line(line)).startswith(words)
    [entry] = await queue(harness)
    assert (entry.position, entry.job_id.value, entry.name) == (1, second, "second")
    assert entry.reason.kind == "resources" and entry.reason.holders[0].job_id == first
    await harness.cancel(first)
    running = await harness.until(second, lambda s: s.state == P.JOB_STATE_RUNNING)
    assert not [line for line in running.messages if is_wait_line(line)]
    assert (await harness.owned_status(second)).waiting == ""
    assert await queue(harness) == []
    await harness.cancel(second)


async def test_behind_a_hold_the_queue_names_the_job_the_node_drains_for(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "gpu", {"g.yaml": single(requests="{gpu: 1}")})
    env = {**GPU_ENV, "AORTA_SCHEDULER_HOLD_AFTER": "0.5"}
    await harness.replica(env, behaviours={"only": Behaviour(hang=True)})
    blocker = await harness.run("blocker")
    await harness.until(blocker, lambda s: s.state == P.JOB_STATE_RUNNING)
    oldest = await harness.run("oldest")
    younger = await harness.run("younger", priority=P.JOB_PRIORITY_HIGHER)
    status, reason = await reason_of(harness, younger, "held")
    assert reason["target"] == oldest and reason["waited_seconds"] >= 0.5
    assert f"waiting: held: the node is draining for job {oldest} (waited " in "\n".join(
        status.messages
    )
    _, oldest_reason = await reason_of(harness, oldest, "resources")
    assert oldest_reason["holders"][0]["job_id"] == blocker
    entries = await queue(harness)
    assert [(e.position, e.job_id.value) for e in entries] == [(1, oldest), (2, younger)]
    assert [e.reason.kind for e in entries] == ["resources", "held"]
    assert entries[1].reason.target_job_id == oldest and entries[1].reason.waited_seconds >= 0.5
    for job_id in (blocker, oldest, younger):
        await harness.cancel(job_id)


async def test_a_user_sees_other_users_queued_jobs_only_as_places(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "gpu", {"g.yaml": single(requests="{gpu: 1}")})
    await harness.replica(GPU_ENV, behaviours={"only": Behaviour(hang=True)})
    alice, bob = harness.acting_as(ALICE), harness.acting_as(BOB)
    blocker = await alice.run("blocker")
    await alice.until(blocker, lambda s: s.state == P.JOB_STATE_RUNNING)
    theirs = await alice.run("alice-waits")
    mine = await bob.run("bob-waits")
    status, reason = await reason_of(bob, mine, "resources")
    assert [(h["job_id"], h["operator"], h["since"]) for h in reason["holders"]] == [("", "", None)]
    assert reason["text"] == "needs 1 GPU; the node has 1, held by another user's job"
    assert blocker not in f"{status}{reason}"
    _, alices = await reason_of(alice, theirs, "resources")
    assert [h["job_id"] for h in alices["holders"]] == [blocker]
    for caller in (VIEWER, ADMIN):
        _, seen = await reason_of(harness.acting_as(caller), mine, "resources")
        assert [(h["job_id"], h["operator"]) for h in seen["holders"]] == [(blocker, "only")]
    entries = await queue(bob)
    assert [e.position for e in entries] == [1, 2]
    assert entries[0].hidden and not entries[0].job_id.value and not entries[0].name
    assert not entries[0].HasField("reason")
    assert (entries[1].job_id.value, entries[1].reason.kind) == (mine, "resources")
    assert entries[1].reason.holders[0].job_id == "" and blocker not in str(entries)
    assert (await queue(alice))[0].reason.holders[0].job_id == blocker
    assert [e.job_id.value for e in await queue(harness)] == [theirs, mine]
    for job_id in (blocker, theirs):
        await alice.cancel(job_id)
    await bob.cancel(mine)


async def test_a_user_held_for_another_users_job_is_not_told_its_id(harness: Harness) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "gpu", {"g.yaml": single(requests="{gpu: 1}")})
    env = {**GPU_ENV, "AORTA_SCHEDULER_HOLD_AFTER": "0.5"}
    await harness.replica(env, behaviours={"only": Behaviour(hang=True)})
    alice, bob = harness.acting_as(ALICE), harness.acting_as(BOB)
    blocker = await alice.run("blocker")
    await alice.until(blocker, lambda s: s.state == P.JOB_STATE_RUNNING)
    oldest = await alice.run("oldest")
    younger = await bob.run("younger", priority=P.JOB_PRIORITY_HIGHER)
    status, reason = await reason_of(bob, younger, "held")
    assert reason["target"] == "" and reason["waited_seconds"] >= 0.5
    assert reason["text"].startswith("held: the node is draining for another user's job (waited ")
    assert oldest not in f"{status}{reason}" and blocker not in f"{status}{reason}"
    [_, entry] = await queue(bob)
    assert entry.job_id.value == younger and entry.reason.target_job_id == ""
    assert "another user's job" in entry.reason.text and oldest not in str(entry)
    for caller in (VIEWER, ADMIN):
        _, seen = await reason_of(harness.acting_as(caller), younger, "held")
        assert seen["target"] == oldest
        assert [e.reason.target_job_id for e in await queue(harness.acting_as(caller))] == [
            "",
            oldest,
        ]
    for job_id in (blocker, oldest):
        await alice.cancel(job_id)
    await bob.cancel(younger)


GPU_FORK = """\
api-version: 0.4.0
name: gpu-fork
operators:
- {name: left, container: {image: x}, input: [{path: /in}], output: [{path: /out}],
   requests: {gpu: 1}}
- {name: right, container: {image: x}, input: [{path: /in}], output: [{path: /out}],
   requests: {gpu: 1}}
"""


async def test_a_ready_operator_names_its_sibling_holding_the_gpu_until_it_starts(
    harness: Harness,
) -> None:
    harness.peers.add_pipeline(PIPELINE_ID, "gpu-fork", {"f.yaml": GPU_FORK})
    hang = Behaviour(hang=True)
    replica = await harness.replica(GPU_ENV, behaviours={"left": hang, "right": hang})
    job_id = await harness.run()
    deadline = time.monotonic() + 60
    while True:
        answer = await harness.owned_status(job_id)
        operators = json.loads(answer.waiting or "{}").get("operators", {})
        if operators:
            break
        assert time.monotonic() < deadline, "no operator ever waited"
        await asyncio.sleep(0.02)
    [(waiting, reason)] = operators.items()
    [running] = {"left", "right"} - {waiting}
    assert reason["kind"] == "resources"
    assert [(h["job_id"], h["operator"]) for h in reason["holders"]] == [(job_id, running)]
    assert f"operator {waiting} waiting: needs 1 GPU; the node has 1, held by job {job_id} " in (
        "\n".join(answer.status.messages)
    )
    assert await queue(harness) == []
    await harness.until(job_id, lambda s: len(replica.executor.starts) == 1)
    replica.executor.complete(replica.executor.starts[0].run_id)
    status = await harness.until(job_id, lambda s: len(replica.executor.starts) == 2)
    assert not [line for line in status.messages if is_wait_line(line)]
    await harness.cancel(job_id)
