"""The node page's processes as a `user` sees them: its own jobs' with their job, other users'
without, platform processes as they are (`processes_seen_by`, and `GET /api/utilization` over
a stand-in platform); a viewer sees every job's."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from aorta.api import clara_pb2, common_pb2
from aorta.auth.ownership import OTHER_USERS_JOB
from aorta_services.web.context import Console
from aorta_services.web.events import EventHub
from aorta_services.web.platform_client import Caller
from aorta_services.web.server import build_app
from aorta_services.web.sessions import Sessions
from aorta_services.web.utilization import History, processes_seen_by

MINE, THEIRS, GONE = "a" * 32, "b" * 32, "c" * 32


def test_a_user_sees_other_users_jobs_processes_without_their_job() -> None:
    sample = {
        "node_id": "n",
        "pcie_id": 1,
        "processes": [
            {"name": "segment", "job_id": MINE},
            {"name": "classify", "job_id": THEIRS},
            {"name": "tritonserver", "job_id": None},
            {"name": "render", "job_id": GONE},
        ],
    }
    owners = {MINE: "alice", THEIRS: "bob", GONE: None}
    [seen] = processes_seen_by([sample], owners, "alice")
    hidden = {"name": OTHER_USERS_JOB, "job_id": None}
    assert seen["processes"] == [
        {"name": "segment", "job_id": MINE},
        hidden,
        {"name": "tritonserver", "job_id": None},
        hidden,
    ]
    assert seen["node_id"] == "n" and sample["processes"][1]["job_id"] == THEIRS


class FakePlatform:
    """Answers Utilization with one GPU two jobs use, WhoAmI by token."""

    callers = {
        "t-alice": Caller(True, "alice", ("viewer", "user")),
        "t-vera": Caller(True, "vera", ("viewer",)),
    }

    async def utilization(self, token: str | None) -> list[Any]:
        gpu = clara_pb2.ClaraUtilizationResponse.GpuUtilization(node_id="n", pcie_id=1)
        for name, job in (("segment", MINE), ("classify", THEIRS)):
            gpu.process_details.add(name=name, job_id=common_pb2.Identifier(value=job))
        return [gpu]

    async def who_am_i(self, token: str | None) -> Caller:
        return self.callers[token or ""]


async def owner_of(job_id: str, token: str | None) -> str:
    return {MINE: "alice", THEIRS: "bob"}[job_id]


async def current_processes(token: str) -> list[dict[str, Any]]:
    parts = Console(
        platform=FakePlatform(),  # type: ignore[arg-type]
        sessions=Sessions(60.0),
        hub=EventHub(owner_of),
        settings=None,  # type: ignore[arg-type]
        history=History(),
        secure_cookies=False,
    )
    async with TestClient(TestServer(build_app(parts))) as client:
        answer = await client.get("/api/utilization", headers={"Authorization": f"Bearer {token}"})
        assert answer.status == 200, await answer.text()
        [gpu] = (await answer.json())["current"]
        return list(gpu["processes"])


async def test_the_node_page_shows_a_user_its_own_jobs_and_a_viewer_every_job() -> None:
    assert await current_processes("t-alice") == [
        {"name": "segment", "job_id": MINE},
        {"name": OTHER_USERS_JOB, "job_id": None},
    ]
    assert await current_processes("t-vera") == [
        {"name": "segment", "job_id": MINE},
        {"name": "classify", "job_id": THEIRS},
    ]
