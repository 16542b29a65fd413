"""An in-process Clara platform for the CLI tests: every service the CLI calls, state in memory.

It keeps the wire contract (protos/aorta/api and docs/clara-compatibility.md, "The Platform
API on the wire"): each RPC's streaming mode, failures as negative `ResponseHeader.code`s with
gRPC status OK, the header in every streamed message. It records what it received (definition
files, upload messages, model archives), so tests check the exact bytes and names the CLI sent.
Jobs advance one step per `Jobs.Status` call (see fake_jobs.advance). Tests reach these modules
through the conftest beside them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import yaml

from aorta.api import (
    aorta_jobs_pb2_grpc,
    clara_pb2,
    clara_pb2_grpc,
    common_pb2,
    jobs_pb2_grpc,
    models_pb2_grpc,
    payloads_pb2_grpc,
    pipelines_pb2,
    pipelines_pb2_grpc,
)
from aorta.errors import ErrorCode
from aorta.ids import new_id
from tests.integration.cli.fake_jobs import FakeAortaJobs, FakeJobs
from tests.integration.cli.fake_state import Pipeline, State, failed, ident, operators_of
from tests.integration.cli.fake_storage import FakeModels, FakePayloads


class FakePlatform(State):
    """The fake's state plus its gRPC server on 127.0.0.1:<free port>."""

    def __init__(self) -> None:
        super().__init__()
        self.server: grpc.Server | None = None
        self.address = ""

    def start(self) -> str:
        # BDP probing off: a slowed upload then pushes back on the client at once, as a busy
        # server would, instead of being buffered whole.
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=16), options=[("grpc.http2.bdp_probe", 0)]
        )
        clara_pb2_grpc.add_ClaraServicer_to_server(FakeClara(self), server)
        jobs_pb2_grpc.add_JobsServicer_to_server(FakeJobs(self), server)
        aorta_jobs_pb2_grpc.add_JobsServicer_to_server(FakeAortaJobs(self), server)
        payloads_pb2_grpc.add_PayloadsServicer_to_server(FakePayloads(self), server)
        models_pb2_grpc.add_ModelsServicer_to_server(FakeModels(self), server)
        pipelines_pb2_grpc.add_PipelinesServicer_to_server(FakePipelines(self), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self.server, self.address = server, f"127.0.0.1:{port}"
        return self.address

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(grace=None)


class FakeClara(clara_pb2_grpc.ClaraServicer):
    def __init__(self, state: State) -> None:
        self.state = state

    def Version(self, request: Any, context: Any) -> Any:
        response = clara_pb2.ClaraVersionResponse(version=common_pb2.Version(minor=1))
        response.header.messages.append("Fake platform, Clara Platform API 0.8.1")
        return response

    def Utilization(self, request: Any, context: Any) -> Iterator[Any]:
        for _ in range(5 if request.watch else 1):
            yield clara_pb2.ClaraUtilizationResponse(gpu_metrics=self.state.gpus)
            time.sleep(0.05)


class FakePipelines(pipelines_pb2_grpc.PipelinesServicer):
    def __init__(self, state: State) -> None:
        self.state = state

    def _receive(self, requests: Iterator[Any]) -> tuple[dict[str, str], Any]:
        files: dict[str, str] = {}
        first = None
        for request in requests:
            first = first or request
            path = request.definition.path
            self.state.pipeline_messages.append((path, len(request.definition.content)))
            files[path] = files.get(path, "") + request.definition.content
        return files, first

    def Create(self, request_iterator: Iterator[Any], context: Any) -> Any:
        files, _ = self._receive(request_iterator)
        root = next(iter(files))
        try:
            upstream = operators_of(files, root)
        except (KeyError, TypeError, yaml.YAMLError) as exc:
            return failed(
                pipelines_pb2.PipelinesCreateResponse,
                ErrorCode.PIPELINE_LOAD_ERROR,
                f"{root}: cannot load: {exc!r}",
            )
        name = yaml.safe_load(files[root])["name"]
        pipeline = Pipeline(new_id(), name, files, upstream)
        with self.state.lock:
            self.state.pipelines[pipeline.pipeline_id] = pipeline
        return pipelines_pb2.PipelinesCreateResponse(pipeline_id=ident(pipeline.pipeline_id))

    def Update(self, request_iterator: Iterator[Any], context: Any) -> Any:
        files, first = self._receive(request_iterator)
        pipeline = self.state.pipelines.get(first.pipeline_id.value)
        if pipeline is None:
            return failed(
                pipelines_pb2.PipelinesUpdateResponse,
                ErrorCode.PIPELINE_NOT_FOUND,
                f"pipeline {first.pipeline_id.value} does not exist",
            )
        pipeline.files = files
        pipeline.upstream = operators_of(files, next(iter(files)))
        return pipelines_pb2.PipelinesUpdateResponse()

    def List(self, request: Any, context: Any) -> Iterator[Any]:
        for pipeline in list(self.state.pipelines.values()):
            details = pipelines_pb2.PipelinesListResponse.PipelineDetails(
                pipeline_id=ident(pipeline.pipeline_id), name=pipeline.name
            )
            yield pipelines_pb2.PipelinesListResponse(details=details)

    def Details(self, request: Any, context: Any) -> Iterator[Any]:
        pipeline = self.state.pipelines.get(request.pipeline_id.value)
        if pipeline is None:
            yield failed(
                pipelines_pb2.PipelinesDetailsResponse,
                ErrorCode.PIPELINE_NOT_FOUND,
                f"pipeline {request.pipeline_id.value} does not exist",
            )
            return
        node = pipelines_pb2.PipelinesDetailsResponse.PipelineDagNode
        nodes = {name: node(name=name) for name in pipeline.upstream}
        # Build the `next` links from the sinks up, so each node carries its whole subtree.
        for name in reversed(list(pipeline.upstream)):
            for up in pipeline.upstream[name]:
                nodes[up].next.append(nodes[name])
        roots = [nodes[n] for n, ups in pipeline.upstream.items() if not ups]
        for index, (path, content) in enumerate(pipeline.files.items()):
            response = pipelines_pb2.PipelinesDetailsResponse(
                pipeline_id=ident(pipeline.pipeline_id),
                name=pipeline.name,
                definition=pipelines_pb2.PipelineDefinitionFile(path=path, content=content),
                dag=roots if index == 0 else [],
            )
            yield response

    def Remove(self, request: Any, context: Any) -> Any:
        if self.state.pipelines.pop(request.pipeline_id.value, None) is None:
            return failed(
                pipelines_pb2.PipelinesRemoveResponse,
                ErrorCode.PIPELINE_NOT_FOUND,
                f"pipeline {request.pipeline_id.value} does not exist",
            )
        return pipelines_pb2.PipelinesRemoveResponse()
