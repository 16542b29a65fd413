"""The console's calls of the platform's public gRPC API, each with the caller's token.

One `grpc.aio` channel to the gateway is shared by every browser; the credentials differ per
call: each call carries `authorization: Bearer <token>` of the user it is made for (or none
when the platform has no authentication), so the gateway authenticates, authorizes and audits
it as that user. A negative Clara header or a non-OK gRPC status is raised as an `ApiError`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

import aorta
from aorta.api import (
    aorta_jobs_pb2,
    aorta_jobs_pb2_grpc,
    aorta_payloads_pb2_grpc,
    aorta_session_pb2,
    aorta_session_pb2_grpc,
    clara_pb2,
    clara_pb2_grpc,
    common_pb2,
    jobs_pb2,
    jobs_pb2_grpc,
    models_pb2,
    models_pb2_grpc,
    payloads_pb2,
    payloads_pb2_grpc,
    pipelines_pb2,
    pipelines_pb2_grpc,
)
from aorta.auth.ownership import owner_from_metadata
from aorta_services.web.problems import ApiError, from_header, from_status

UNARY_TIMEOUT = 60.0
"""Seconds a unary call may take; streams end or are cancelled with their request."""
_MAX_MESSAGE = 8 * 1024 * 1024

Metadata = tuple[tuple[str, str], ...]
R = TypeVar("R")


def request_header() -> common_pb2.RequestHeader:
    """The header of every request: the Clara API version spoken, and the console as agent."""
    major, minor, patch = aorta.CLARA_API_VERSION
    return common_pb2.RequestHeader(
        api_version=common_pb2.Version(major=major, minor=minor, patch=patch),
        user_agent=f"aorta-console/{aorta.__version__}",
    )


def identifier(value: str) -> common_pb2.Identifier:
    return common_pb2.Identifier(value=value)


def checked(response: R, action: str) -> R:
    """`response`, unless its header carries a negative code: then the `ApiError` it means."""
    header = response.header  # type: ignore[attr-defined]
    if header.code < 0:
        raise from_header(header.code, list(header.messages), action)
    return response


def credentials(token: str | None) -> Metadata:
    """The call metadata that presents `token`; none without one."""
    return (("authorization", f"Bearer {token}"),) if token else ()


@dataclass(frozen=True)
class Caller:
    """Who the platform takes a token's holder to be (`aorta.v1.Session/WhoAmI`)."""

    authentication: bool
    subject: str
    roles: tuple[str, ...]

    @property
    def role(self) -> str | None:
        """The highest role held (roles come lowest first)."""
        return self.roles[-1] if self.roles else None

    @property
    def sees_every_job(self) -> bool:
        """Whether this caller reads every job (a viewer or an admin) or only its own (a user)."""
        return self.role != "user"


class Platform:
    """The gateway's stubs over one channel; `close` when the console stops."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._channel = channel
        self.jobs = jobs_pb2_grpc.JobsStub(channel)
        self.aorta_jobs = aorta_jobs_pb2_grpc.JobsStub(channel)
        self.aorta_payloads = aorta_payloads_pb2_grpc.PayloadsStub(channel)
        self.pipelines = pipelines_pb2_grpc.PipelinesStub(channel)
        self.payloads = payloads_pb2_grpc.PayloadsStub(channel)
        self.models = models_pb2_grpc.ModelsStub(channel)
        self.clara = clara_pb2_grpc.ClaraStub(channel)
        self.session = aorta_session_pb2_grpc.SessionStub(channel)

    @classmethod
    def connect(
        cls, address: str, *, tls: bool, ca: bytes | None = None, server_name: str = ""
    ) -> Platform:
        """A channel to the gateway at `address`: with `tls`, trusting `ca` (the public CAs
        without one) and checking `server_name` when given."""
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.max_send_message_length", _MAX_MESSAGE),
        ]
        if not tls:
            return cls(grpc.aio.insecure_channel(address, options))
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        trust = grpc.ssl_channel_credentials(root_certificates=ca)
        return cls(grpc.aio.secure_channel(address, trust, options))

    async def close(self) -> None:
        await self._channel.close()

    async def unary(self, method: str, call: Any, request: Any, token: str | None) -> Any:
        """`call(request)` with `token`, failures raised as `ApiError`s naming `method`."""
        try:
            return await call(request, metadata=credentials(token), timeout=UNARY_TIMEOUT)
        except grpc.aio.AioRpcError as error:
            raise from_status(error.code(), error.details() or "", method) from None

    async def stream(
        self, method: str, call: Any, request: Any, token: str | None
    ) -> AsyncGenerator[Any, None]:
        """The responses of the server stream `call(request)` with `token`."""
        responses = call(request, metadata=credentials(token))
        try:
            async for response in responses:
                yield response
        except grpc.aio.AioRpcError as error:
            raise from_status(error.code(), error.details() or "", method) from None
        finally:
            responses.cancel()

    async def who_am_i(self, token: str | None) -> Caller:
        request = aorta_session_pb2.SessionWhoAmIRequest(header=request_header())
        answer = await self.unary("Session.WhoAmI", self.session.WhoAmI, request, token)
        return Caller(answer.authentication, answer.subject, tuple(answer.roles))

    async def version(self, token: str | None) -> str:
        request = clara_pb2.ClaraVersionRequest(header=request_header())
        answer = checked(
            await self.unary("Clara.Version", self.clara.Version, request, token), "version"
        )
        version = answer.version
        return f"{version.major}.{version.minor}.{version.patch}"

    async def pipelines_list(
        self, token: str | None
    ) -> list[pipelines_pb2.PipelinesListResponse.PipelineDetails]:
        request = pipelines_pb2.PipelinesListRequest(header=request_header())
        found = []
        async for answer in self.stream("Pipelines.List", self.pipelines.List, request, token):
            checked(answer, "listing pipelines")
            if answer.details.pipeline_id.value:
                found.append(answer.details)
        return found

    async def pipeline_details(
        self, pipeline_id: str, token: str | None
    ) -> list[pipelines_pb2.PipelinesDetailsResponse]:
        """Every message of `Pipelines.Details`: one per definition file, the DAG on the first."""
        request = pipelines_pb2.PipelinesDetailsRequest(
            header=request_header(), pipeline_id=identifier(pipeline_id)
        )
        action = f"reading pipeline {pipeline_id}"
        stream = self.stream("Pipelines.Details", self.pipelines.Details, request, token)
        return [checked(answer, action) async for answer in stream]

    async def create_job(
        self,
        pipeline_id: str,
        name: str,
        priority: int,
        token: str | None,
    ) -> jobs_pb2.JobsCreateResponse:
        request = jobs_pb2.JobsCreateRequest(
            header=request_header(),
            pipeline_id=identifier(pipeline_id),
            name=name,
            priority=priority,  # type: ignore[arg-type]
        )
        answer: jobs_pb2.JobsCreateResponse = await self.unary(
            "Jobs.Create", self.jobs.Create, request, token
        )
        return checked(answer, f"creating a job of pipeline {pipeline_id}")

    async def upload(
        self,
        requests: AsyncIterator[payloads_pb2.PayloadsUploadRequest],
        payload_id: str,
        token: str | None,
    ) -> payloads_pb2.PayloadsUploadResponse:
        """`Payloads.Upload` of the stream `requests`, which the caller produces as it reads."""
        try:
            answer = await self.payloads.Upload(requests, metadata=credentials(token))
        except grpc.aio.AioRpcError as error:
            raise from_status(error.code(), error.details() or "", "Payloads.Upload") from None
        return checked(answer, f"uploading to payload {payload_id}")

    async def start_job(
        self, job_id: str, variables: Mapping[str, str], token: str | None
    ) -> jobs_pb2.JobsStartResponse:
        request = jobs_pb2.JobsStartRequest(
            header=request_header(),
            job_id=identifier(job_id),
            Variables=[
                jobs_pb2.JobsStartRequest.NamedValue(name=key, value=value)
                for key, value in variables.items()
            ],
        )
        answer: jobs_pb2.JobsStartResponse = await self.unary(
            "Jobs.Start", self.jobs.Start, request, token
        )
        return checked(answer, f"starting job {job_id}")

    async def cancel_job(
        self, job_id: str, reason: str, token: str | None
    ) -> jobs_pb2.JobsCancelResponse:
        request = jobs_pb2.JobsCancelRequest(
            header=request_header(), job_id=identifier(job_id), reason=reason
        )
        answer: jobs_pb2.JobsCancelResponse = await self.unary(
            "Jobs.Cancel", self.jobs.Cancel, request, token
        )
        return checked(answer, f"cancelling job {job_id}")

    async def delete_job(self, job_id: str, token: str | None) -> aorta_jobs_pb2.JobsDeleteResponse:
        request = aorta_jobs_pb2.JobsDeleteRequest(
            header=request_header(), job_id=identifier(job_id)
        )
        answer: aorta_jobs_pb2.JobsDeleteResponse = await self.unary(
            "Jobs.Delete", self.aorta_jobs.Delete, request, token
        )
        return checked(answer, f"deleting job {job_id}")

    async def job_status(
        self, job_id: str, token: str | None
    ) -> tuple[jobs_pb2.JobsStatusResponse, str]:
        """`Jobs.Status` of `job_id`, with the job's owner ("" when the platform names none)."""
        request = jobs_pb2.JobsStatusRequest(header=request_header(), job_id=identifier(job_id))
        call = self.jobs.Status(request, metadata=credentials(token), timeout=UNARY_TIMEOUT)
        try:
            answer = await call
            owner = owner_from_metadata(await call.initial_metadata())
        except grpc.aio.AioRpcError as error:
            raise from_status(error.code(), error.details() or "", "Jobs.Status") from None
        return checked(answer, f"reading job {job_id}"), owner

    async def jobs_page(
        self, request: aorta_jobs_pb2.JobsPageRequest, token: str | None
    ) -> aorta_jobs_pb2.JobsPageResponse:
        """`aorta.v1.Jobs/Page`: one page of the jobs the caller may see."""
        request.header.CopyFrom(request_header())
        answer: aorta_jobs_pb2.JobsPageResponse = await self.unary(
            "Jobs.Page", self.aorta_jobs.Page, request, token
        )
        return checked(answer, "listing jobs")

    async def read_logs(self, job_id: str, operator: str, token: str | None) -> list[str]:
        """Every line of one operator's log (the platform sends the whole log on each call)."""
        request = jobs_pb2.JobsReadLogsRequest(
            header=request_header(), job_id=identifier(job_id), operator_name=operator
        )
        lines: list[str] = []
        action = f"reading the log of {operator!r} in job {job_id}"
        async for answer in self.stream("Jobs.ReadLogs", self.jobs.ReadLogs, request, token):
            checked(answer, action)
            lines.extend(line.rstrip("\n") for line in answer.logs)
        return lines

    async def timeline(
        self, job_id: str, token: str | None
    ) -> aorta_jobs_pb2.JobsTimelineResponse | None:
        """`aorta.v1.Jobs/Timeline`; None when the platform does not implement it."""
        request = aorta_jobs_pb2.JobsTimelineRequest(
            header=request_header(), job_id=identifier(job_id)
        )
        try:
            answer: aorta_jobs_pb2.JobsTimelineResponse = await self.unary(
                "Jobs.Timeline", self.aorta_jobs.Timeline, request, token
            )
        except ApiError as error:
            if error.code == "UNIMPLEMENTED":
                return None
            raise
        return checked(answer, f"reading the timeline of job {job_id}")

    async def payload_details(
        self, payload_id: str, token: str | None
    ) -> list[payloads_pb2.PayloadsDetailsResponse]:
        request = payloads_pb2.PayloadsDetailsRequest(
            header=request_header(), payload_id=identifier(payload_id)
        )
        action = f"listing payload {payload_id}"
        stream = self.stream("Payloads.Details", self.payloads.Details, request, token)
        return [checked(answer, action) async for answer in stream]

    def download(
        self, payload_id: str, name: str, token: str | None
    ) -> AsyncGenerator[payloads_pb2.PayloadsDownloadResponse, None]:
        request = payloads_pb2.PayloadsDownloadRequest(
            header=request_header(), payload_id=identifier(payload_id), name=name
        )
        return self.stream("Payloads.Download", self.payloads.Download, request, token)

    async def models_list(self, token: str | None) -> list[models_pb2.ModelDetails]:
        request = models_pb2.ModelsListModelsRequest(header=request_header())
        found: list[models_pb2.ModelDetails] = []
        stream = self.stream("Models.ListModels", self.models.ListModels, request, token)
        async for answer in stream:
            found.extend(checked(answer, "listing models").models)
        return found

    async def utilization(
        self, token: str | None
    ) -> Sequence[clara_pb2.ClaraUtilizationResponse.GpuUtilization]:
        request = clara_pb2.ClaraUtilizationRequest(header=request_header(), watch=False)
        found: list[clara_pb2.ClaraUtilizationResponse.GpuUtilization] = []
        stream = self.stream("Clara.Utilization", self.clara.Utilization, request, token)
        async for answer in stream:
            found.extend(checked(answer, "reading utilization").gpu_metrics)
        return found
