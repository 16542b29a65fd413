"""The fake Payloads and Models services: files and model archives kept in memory."""

from __future__ import annotations

import hashlib
import io
import time
import zipfile
from collections.abc import Iterator
from typing import Any

from aorta.api import common_pb2, models_pb2, models_pb2_grpc, payloads_pb2, payloads_pb2_grpc
from aorta.auth.ownership import FORCE_METADATA
from aorta.errors import ErrorCode
from aorta.ids import new_id
from aorta.payload_names import checksum_line
from tests.integration.cli.fake_state import Model, Payload, State, failed, ident

DOWNLOAD_CHUNK = 256 * 1024


def _rooted(name: str) -> str:
    """Clara download names: relative to the payload root, `./` and `/` ignored."""
    return "/" + name.removeprefix("./").lstrip("/")


class FakePayloads(payloads_pb2_grpc.PayloadsServicer):
    def __init__(self, state: State) -> None:
        self.state = state

    def _missing(self, response_class: type[Any], payload_id: str) -> Any:
        return failed(
            response_class, ErrorCode.PAYLOAD_NOT_FOUND, f"payload {payload_id} does not exist"
        )

    def Create(self, request: Any, context: Any) -> Any:
        payload = Payload(new_id(), payloads_pb2.PAYLOAD_TYPE_REUSABLE)
        with self.state.lock:
            self.state.payloads[payload.payload_id] = payload
        return payloads_pb2.PayloadsCreateResponse(
            payload_id=ident(payload.payload_id), type=payload.kind
        )

    def Upload(self, request_iterator: Iterator[Any], context: Any) -> Any:
        received: dict[str, bytes] = {}
        payload_id = ""
        for request in request_iterator:
            payload_id = payload_id or request.payload_id.value
            name = request.details.name
            self.state.upload_messages.append((name, len(request.data)))
            received[name] = received.get(name, b"") + request.data
            time.sleep(self.state.upload_delay)
        with self.state.lock:
            payload = self.state.payloads.get(payload_id)
            if payload is None:
                return self._missing(payloads_pb2.PayloadsUploadResponse, payload_id)
            if payload.read_only:
                return failed(
                    payloads_pb2.PayloadsUploadResponse,
                    ErrorCode.PAYLOAD_READ_ONLY,
                    f"payload {payload_id} is read-only: its job has started",
                )
            lines = []
            for name, data in received.items():
                rooted = f"/input/{name}"
                payload.files[rooted] = data
                payload.sha256[rooted] = hashlib.sha256(data).hexdigest()
                lines.append(checksum_line(payload.sha256[rooted], rooted))
        return payloads_pb2.PayloadsUploadResponse(header=common_pb2.ResponseHeader(messages=lines))

    def Details(self, request: Any, context: Any) -> Iterator[Any]:
        payload = self.state.payloads.get(request.payload_id.value)
        if payload is None:
            yield self._missing(payloads_pb2.PayloadsDetailsResponse, request.payload_id.value)
            return
        with self.state.lock:
            files = sorted(payload.files.items())
        base = {"payload_id": ident(payload.payload_id), "type": payload.kind}
        if payload.job_id:
            base["job_id"] = ident(payload.job_id)
        if not files:
            yield payloads_pb2.PayloadsDetailsResponse(**base)
        for name, data in files:
            details = payloads_pb2.PayloadFileDetails(name=name, size=len(data), mode=0o644)
            recorded = payload.sha256.get(name)
            lines = [checksum_line(recorded, name)] if recorded else []
            header = common_pb2.ResponseHeader(messages=lines)
            yield payloads_pb2.PayloadsDetailsResponse(header=header, file=details, **base)

    def Download(self, request: Any, context: Any) -> Iterator[Any]:
        payload = self.state.payloads.get(request.payload_id.value)
        if payload is None:
            yield self._missing(payloads_pb2.PayloadsDownloadResponse, request.payload_id.value)
            return
        name = _rooted(request.name)
        data = payload.files.get(name)
        if data is None:
            yield failed(
                payloads_pb2.PayloadsDownloadResponse,
                ErrorCode.PAYLOAD_FILE_NOT_FOUND,
                f"payload {payload.payload_id} has no file {request.name!r}",
            )
            return
        details = payloads_pb2.PayloadFileDetails(name=name, size=len(data), mode=0o644)
        for start in range(0, max(len(data), 1), DOWNLOAD_CHUNK):
            chunk = data[start : start + DOWNLOAD_CHUNK]
            yield payloads_pb2.PayloadsDownloadResponse(details=details, data=chunk)

    def Delete(self, request: Any, context: Any) -> Any:
        forced = (FORCE_METADATA, "true") in tuple(context.invocation_metadata() or ())
        with self.state.lock:
            found = self.state.payloads.get(request.payload_id.value)
            if found is None:
                return self._missing(payloads_pb2.PayloadsDeleteResponse, request.payload_id.value)
            if found.read_only and not forced:
                return failed(
                    payloads_pb2.PayloadsDeleteResponse,
                    ErrorCode.PAYLOAD_READ_ONLY,
                    f"payload {found.payload_id} is the read-only payload of job {found.job_id}",
                )
            del self.state.payloads[found.payload_id]
        return payloads_pb2.PayloadsDeleteResponse()


class FakeModels(models_pb2_grpc.ModelsServicer):
    def __init__(self, state: State) -> None:
        self.state = state

    def _missing(self, response_class: type[Any], model_id: str) -> Any:
        return failed(response_class, ErrorCode.MODEL_NOT_FOUND, f"model {model_id} not found")

    def UploadModel(self, request_iterator: Iterator[Any], context: Any) -> Any:
        requests = iter(request_iterator)
        details = next(requests).details  # the first message: details alone
        archive = b"".join(request.data for request in requests)
        try:
            with zipfile.ZipFile(io.BytesIO(archive)) as opened:
                members = {info.filename: opened.read(info) for info in opened.infolist()}
        except zipfile.BadZipFile:
            return failed(
                models_pb2.ModelsUploadModelResponse,
                ErrorCode.MODEL_ARCHIVE_INVALID,
                "the model is not a zip archive",
            )
        model = Model(
            new_id(), details.name, details.type, dict(details.metadata), archive, members
        )
        with self.state.lock:
            for existing in [m for m in self.state.models.values() if m.name == model.name]:
                del self.state.models[existing.model_id]  # the same name replaces
            self.state.models[model.model_id] = model
        return models_pb2.ModelsUploadModelResponse(details=self._details(model))

    def _details(self, model: Model) -> models_pb2.ModelDetails:
        return models_pb2.ModelDetails(
            model_id=ident(model.model_id),
            name=model.name,
            type=model.kind,
            metadata=model.metadata,
        )

    def ListModels(self, request: Any, context: Any) -> Iterator[Any]:
        with self.state.lock:
            models = list(self.state.models.values())
        # One model per message: the client has to gather the stream.
        for model in models:
            yield models_pb2.ModelsListModelsResponse(models=[self._details(model)])
        if not models:
            yield models_pb2.ModelsListModelsResponse()

    def DownloadModel(self, request: Any, context: Any) -> Iterator[Any]:
        model = self.state.models.get(request.model_id.value)
        if model is None:
            yield self._missing(models_pb2.ModelsDownloadModelResponse, request.model_id.value)
            return
        yield models_pb2.ModelsDownloadModelResponse(details=self._details(model))
        for start in range(0, len(model.archive), DOWNLOAD_CHUNK):
            chunk = model.archive[start : start + DOWNLOAD_CHUNK]
            yield models_pb2.ModelsDownloadModelResponse(data=chunk)

    def DeleteModel(self, request: Any, context: Any) -> Any:
        with self.state.lock:
            if self.state.models.pop(request.model_id.value, None) is None:
                return self._missing(models_pb2.ModelsDeleteModelResponse, request.model_id.value)
        return models_pb2.ModelsDeleteModelResponse(model_id=request.model_id)
