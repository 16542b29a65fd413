"""The generated `aorta.api` stubs import, build messages and serve real gRPC calls."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from aorta.api import (
    clara_pb2,
    clara_pb2_grpc,
    common_pb2,
    jobs_pb2,
    jobs_pb2_grpc,
    models_pb2_grpc,
    node_monitor_pb2,
    node_monitor_pb2_grpc,
    payloads_pb2_grpc,
    pipelines_pb2,
    pipelines_pb2_grpc,
)


def test_start_request_carries_capitalised_variables() -> None:
    request = jobs_pb2.JobsStartRequest(
        job_id=common_pb2.Identifier(value="ab" * 16),
        Variables=[jobs_pb2.JobsStartRequest.NamedValue(name="threshold", value="0.5")],
    )
    parsed = jobs_pb2.JobsStartRequest.FromString(request.SerializeToString())
    assert [(v.name, v.value) for v in parsed.Variables] == [("threshold", "0.5")]


def test_metadata_fields_are_maps() -> None:
    request = pipelines_pb2.PipelinesCreateRequest(metadata={"owner": "radiology"})
    request.metadata["site"] = "north"
    parsed = pipelines_pb2.PipelinesCreateRequest.FromString(request.SerializeToString())
    assert dict(parsed.metadata) == {"owner": "radiology", "site": "north"}


def test_node_monitor_has_its_own_package() -> None:
    service = node_monitor_pb2.DESCRIPTOR.services_by_name["Monitor"]
    assert service.full_name == "nvidia.clara.platform.node_monitor.Monitor"
    assert node_monitor_pb2.GpuDetails.GpuMetrics(free_bar_1=1).free_bar_1 == 1


@pytest.mark.parametrize(
    ("module", "service"),
    [
        (clara_pb2_grpc, "Clara"),
        (jobs_pb2_grpc, "Jobs"),
        (models_pb2_grpc, "Models"),
        (payloads_pb2_grpc, "Payloads"),
        (pipelines_pb2_grpc, "Pipelines"),
        (node_monitor_pb2_grpc, "Monitor"),
    ],
)
def test_every_service_has_stub_servicer_and_registration(module: object, service: str) -> None:
    for name in (f"{service}Stub", f"{service}Servicer", f"add_{service}Servicer_to_server"):
        assert callable(getattr(module, name)), name


class _Clara(clara_pb2_grpc.ClaraServicer):
    """Answers every Clara RPC with fixed values, to exercise each streaming mode."""

    async def Stop(
        self,
        request: clara_pb2.ClaraStopRequest,
        context: grpc.aio.ServicerContext[clara_pb2.ClaraStopRequest, clara_pb2.ClaraStopResponse],
    ) -> clara_pb2.ClaraStopResponse:
        return clara_pb2.ClaraStopResponse(header=common_pb2.ResponseHeader(code=0))

    async def Utilization(
        self,
        request: clara_pb2.ClaraUtilizationRequest,
        context: grpc.aio.ServicerContext[
            clara_pb2.ClaraUtilizationRequest, clara_pb2.ClaraUtilizationResponse
        ],
    ) -> AsyncIterator[clara_pb2.ClaraUtilizationResponse]:
        gpu = clara_pb2.ClaraUtilizationResponse.GpuUtilization
        for pcie_id in (1, 2):
            yield clara_pb2.ClaraUtilizationResponse(gpu_metrics=[gpu(pcie_id=pcie_id)])

    async def Version(
        self,
        request: clara_pb2.ClaraVersionRequest,
        context: grpc.aio.ServicerContext[
            clara_pb2.ClaraVersionRequest, clara_pb2.ClaraVersionResponse
        ],
    ) -> clara_pb2.ClaraVersionResponse:
        return clara_pb2.ClaraVersionResponse(
            header=common_pb2.ResponseHeader(code=0),
            version=common_pb2.Version(major=0, minor=8, patch=1),
        )


async def test_servicer_answers_over_a_real_channel() -> None:
    server = grpc.aio.server()
    clara_pb2_grpc.add_ClaraServicer_to_server(_Clara(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = clara_pb2_grpc.ClaraStub(channel)
            version = await stub.Version(clara_pb2.ClaraVersionRequest(), timeout=10)
            stop = await stub.Stop(clara_pb2.ClaraStopRequest(), timeout=10)
            samples = [
                response
                async for response in stub.Utilization(
                    clara_pb2.ClaraUtilizationRequest(), timeout=10
                )
            ]
    finally:
        await server.stop(grace=None)
    assert (version.version.major, version.version.minor, version.version.patch) == (0, 8, 1)
    assert stop.header.code == 0
    assert [sample.gpu_metrics[0].pcie_id for sample in samples] == [1, 2]
