"""`aorta audit` against a real gateway: `-o json` (and `--json`) print the records as a JSON
list, the table names who did what, filters reach the server, and a non-admin is refused."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from aorta import subjects
from aorta.api import common_pb2, jobs_pb2, jobs_pb2_grpc
from aorta.auth.principal import Role
from aorta.bus import Request
from aorta.cli import register
from tests.unit.gateway.door_harness import TOKEN_OF, Door, FakeAuthenticator, bearer, door_gateway

JOB = "ab" * 16


def _aorta() -> click.Group:
    @click.group()
    def aorta() -> None:
        """aorta"""

    register(aorta)
    return aorta


@pytest.fixture
async def door(tmp_path: Path) -> AsyncIterator[Door]:
    async with door_gateway(tmp_path, authenticator=FakeAuthenticator()) as serving:

        async def cancel(request: Request) -> bytes:
            return jobs_pb2.JobsCancelResponse().SerializeToString()

        subscription = await serving.bus.serve(subjects.SCHEDULER_CANCEL, cancel, queue="s")
        try:
            stub = jobs_pb2_grpc.JobsStub(serving.channel)
            request = jobs_pb2.JobsCancelRequest(job_id=common_pb2.Identifier(value=JOB))
            await stub.Cancel(request, metadata=bearer(Role.USER), timeout=5)
            with pytest.raises(Exception, match="needs the role user"):
                await stub.Cancel(request, metadata=bearer(Role.VIEWER), timeout=5)
        finally:
            await subscription.drain()
        yield serving


async def _audit(door: Door, tmp_path: Path, *args: str, role: Role = Role.ADMIN) -> Result:
    env = {
        "AORTA_HOST": f"127.0.0.1:{door.port}",
        "AORTA_TOKEN": TOKEN_OF[role],
        "AORTA_CONFIG": str(tmp_path / "no-config.yaml"),
    }
    # The CLI is synchronous: it runs in a thread while this loop serves the gateway.
    return await asyncio.to_thread(CliRunner().invoke, _aorta(), ["audit", *args], env=env)


@pytest.mark.parametrize("flag", [["-o", "json"], ["--json"]])
async def test_json_lists_every_record(door: Door, tmp_path: Path, flag: list[str]) -> None:
    result = await _audit(door, tmp_path, *flag)
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [(r["subject"], r["method"], r["result"]) for r in records] == [
        ("alice", "nvidia.clara.platform.Jobs/Cancel", "started"),
        ("alice", "nvidia.clara.platform.Jobs/Cancel", "ok"),
        ("vera", "nvidia.clara.platform.Jobs/Cancel", "PERMISSION_DENIED"),
    ]
    assert records[0]["resources"] == {"job_id": JOB}
    assert records[0]["call_id"] == records[1]["call_id"]


async def test_filters_reach_the_server(door: Door, tmp_path: Path) -> None:
    by_subject = json.loads(
        (await _audit(door, tmp_path, "--subject", "vera", "-o", "json")).stdout
    )
    assert [r["result"] for r in by_subject] == ["PERMISSION_DENIED"]
    other_job = await _audit(door, tmp_path, "--job", "cd" * 16, "-o", "json")
    assert json.loads(other_job.stdout) == []
    recent = await _audit(door, tmp_path, "--since", "1h", "--job", JOB, "-o", "json")
    assert len(json.loads(recent.stdout)) == 3
    future = await _audit(door, tmp_path, "--since", "2999-01-01T00:00Z", "-o", "json")
    assert json.loads(future.stdout) == []


async def test_the_table_shows_who_did_what(door: Door, tmp_path: Path) -> None:
    result = await _audit(door, tmp_path)
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["TIME", "SUBJECT", "CLIENT", "METHOD", "RESOURCES", "RESULT"]
    assert len(rows) == 3
    assert "Jobs.Cancel" in rows[0] and f"job_id={JOB}" in rows[0] and "alice" in rows[0]
    assert rows[2].split()[-1] == "PERMISSION_DENIED"


async def test_a_user_may_not_read_the_log(door: Door, tmp_path: Path) -> None:
    result = await _audit(door, tmp_path, "-o", "json", role=Role.USER)
    assert result.exit_code != 0
    assert "admin" in result.stderr
