"""`ProcEnvironOwners` on live processes: an operator started with the platform's environment,
a grandchild it started with a fresh environment, and processes of no job."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aorta import operator_env
from aorta.gpu import ProcEnvironOwners, ProcessOwner
from aorta.ids import JobId, new_id

# Starts a grandchild with a fresh environment (so only the walk up finds the job), prints its
# pid, and keeps both alive until stdin closes.
OPERATOR = """
import os, subprocess, sys
child = subprocess.Popen(
    [sys.executable, "-c", "import sys; sys.stdin.read()"],
    env={"PATH": os.environ.get("PATH", "")},
    stdin=subprocess.PIPE,
)
print(child.pid, flush=True)
sys.stdin.read()
child.stdin.close()
child.wait()
"""


@asynccontextmanager
async def started(env: dict[str, str]) -> AsyncIterator[tuple[int, int]]:
    """(pid, grandchild pid) of a live OPERATOR process started with `env` added."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        OPERATOR,
        env={**os.environ, **env},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        yield process.pid, int(line)
    finally:
        process.stdin.close()
        await asyncio.wait_for(process.wait(), 30)


async def test_an_operator_and_its_grandchild_belong_to_the_job() -> None:
    job = new_id()
    env = {operator_env.JOB_ID: job, operator_env.STAGE_NAME: "segmentation"}
    owners = ProcEnvironOwners()
    async with started(env) as (operator, grandchild), started({}) as (stranger, its_child):
        found = await owners.owners([operator, grandchild, stranger, its_child, os.getpid()])
    expected = ProcessOwner(job_id=JobId(job), operator="segmentation")
    assert found == {operator: expected, grandchild: expected}


async def test_a_process_that_is_gone_has_no_owner() -> None:
    env = {operator_env.JOB_ID: new_id(), operator_env.STAGE_NAME: "op"}
    async with started(env) as (operator, grandchild):
        pass
    owners = ProcEnvironOwners()
    assert await owners.owners([operator, grandchild]) == {}
