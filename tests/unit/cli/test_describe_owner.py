"""`aorta describe job|pipeline|payload` shows who created the thing: the platform sends the
subject as the `aorta-owner` initial metadata beside Clara's response, and the CLI prints a
`created by` line (and `created_by` in JSON); without it, nothing changes."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import click
import grpc
import pytest
from click.testing import CliRunner, Result

from aorta.api import (
    common_pb2,
    jobs_pb2,
    jobs_pb2_grpc,
    payloads_pb2,
    payloads_pb2_grpc,
    pipelines_pb2,
    pipelines_pb2_grpc,
)
from aorta.auth.ownership import owner_metadata
from aorta.cli import register

ID = "0123456789abcdef0123456789abcdef"
PIPELINE = "name: p\noperators:\n- name: a\n  container: {image: a}\n"


@dataclass
class _Platform(
    jobs_pb2_grpc.JobsServicer,
    pipelines_pb2_grpc.PipelinesServicer,
    payloads_pb2_grpc.PayloadsServicer,
):
    """Describes one job, pipeline and payload, each created by `owner` ("" for none)."""

    owner: str

    def _tell(self, context: grpc.ServicerContext) -> None:
        if self.owner:
            context.send_initial_metadata(owner_metadata(self.owner))

    def Status(
        self, request: jobs_pb2.JobsStatusRequest, context: grpc.ServicerContext
    ) -> jobs_pb2.JobsStatusResponse:
        self._tell(context)
        return jobs_pb2.JobsStatusResponse(
            header=common_pb2.ResponseHeader(code=0),
            job_id=request.job_id,
            name="night-run",
            state=jobs_pb2.JOB_STATE_PENDING,
        )

    def Details(  # type: ignore[override]
        self,
        request: pipelines_pb2.PipelinesDetailsRequest | payloads_pb2.PayloadsDetailsRequest,
        context: grpc.ServicerContext,
    ) -> Iterator[pipelines_pb2.PipelinesDetailsResponse | payloads_pb2.PayloadsDetailsResponse]:
        self._tell(context)
        header = common_pb2.ResponseHeader(code=0)
        if isinstance(request, pipelines_pb2.PipelinesDetailsRequest):
            definition = pipelines_pb2.PipelineDefinitionFile(path="p.yaml", content=PIPELINE)
            yield pipelines_pb2.PipelinesDetailsResponse(
                header=header, pipeline_id=request.pipeline_id, name="p", definition=definition
            )
        else:
            yield payloads_pb2.PayloadsDetailsResponse(
                header=header,
                payload_id=request.payload_id,
                type=payloads_pb2.PAYLOAD_TYPE_REUSABLE,
            )


def _serve(owner: str) -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    platform = _Platform(owner)
    jobs_pb2_grpc.add_JobsServicer_to_server(platform, server)
    pipelines_pb2_grpc.add_PipelinesServicer_to_server(platform, server)
    payloads_pb2_grpc.add_PayloadsServicer_to_server(platform, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace=None).wait()


@pytest.fixture
def owned() -> Iterator[str]:
    yield from _serve("alice@example.org")


@pytest.fixture
def unowned() -> Iterator[str]:
    yield from _serve("")


def _aorta(tmp_path: Path, address: str, *args: str) -> Result:
    @click.group()
    def root() -> None:
        """aorta"""

    register(root)
    env = {"AORTA_CONFIG": str(tmp_path / "no-config.yaml"), "NO_COLOR": "1"}
    for variable in ("AORTA_TOKEN", "AORTA_TOKEN_FILE", "AORTA_CA", "AORTA_HOST"):
        env[variable] = ""
    return CliRunner().invoke(root, [*args, "--host", address], env=env)


DESCRIBE = {
    "job": ("describe", "job", "-j", ID),
    "pipeline": ("describe", "pipeline", "-p", ID),
    "payload": ("describe", "payload", "--payload", ID),
}


@pytest.mark.parametrize("thing", DESCRIBE)
def test_describe_shows_who_created_it(owned: str, tmp_path: Path, thing: str) -> None:
    result = _aorta(tmp_path, owned, *DESCRIBE[thing])
    assert result.exit_code == 0, result.output
    assert "created by: alice@example.org" in result.stdout.splitlines()
    as_json = _aorta(tmp_path, owned, *DESCRIBE[thing], "--json")
    assert '"created_by": "alice@example.org"' in as_json.stdout


@pytest.mark.parametrize("thing", DESCRIBE)
def test_without_an_owner_there_is_no_line(unowned: str, tmp_path: Path, thing: str) -> None:
    result = _aorta(tmp_path, unowned, *DESCRIBE[thing])
    assert result.exit_code == 0, result.output
    assert "created by" not in result.stdout
    as_json = _aorta(tmp_path, unowned, *DESCRIBE[thing], "--json")
    assert '"created_by": null' in as_json.stdout
