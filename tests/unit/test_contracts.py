"""The internal verbs' contracts (`aorta.contracts`): every declared verb's request and answer
survive the one codec, a malformed body is refused in the serving service's words and code, and
the typed helpers (`aorta.bus.verbs`) carry them over a bus.

The verbs are found by walking the module, so a verb declared later is checked without editing
this file; a type whose rules hypothesis cannot guess from its fields is registered below.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import pytest
from google.protobuf.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from aorta import contracts, subjects
from aorta.api import common_pb2, jobs_pb2, models_pb2, payloads_pb2, pipelines_pb2
from aorta.bus.memory import MemoryBus, MemoryNetwork
from aorta.bus.verbs import Contract, StreamVerb, Verb, call, call_stream, streaming
from aorta.errors import ErrorCode, Internal, Invalid
from aorta.ids import JobId, PayloadId, PipelineId
from aorta.runtime.service import RunningService

VERBS: list[Contract[Any, Any]] = [
    value for value in vars(contracts).values() if isinstance(value, Contract)
]
REQUEST_INVALID = {
    "pipelines": ErrorCode.PIPELINE_DEFINITION_ERROR,
    "payloads": ErrorCode.PAYLOAD_REQUEST_INVALID,
    "scheduler": ErrorCode.JOB_REQUEST_INVALID,
    "models": ErrorCode.MODEL_REQUEST_INVALID,
}
"""The code each service raised for a body it could not read before the contracts existed."""
JOB = JobId("a" * 32)
PAYLOAD = PayloadId("b" * 32)


def canonical(kind: Any) -> st.SearchStrategy[Any]:
    return st.uuids().map(lambda value: kind(value.hex))


for id_type in (PipelineId, JobId, PayloadId):
    st.register_type_strategy(id_type, canonical(id_type))
files = st.lists(st.from_type(contracts.PipelineFile), min_size=1).map(tuple)
st.register_type_strategy(
    contracts.CreatePipeline, st.builds(contracts.CreatePipeline, files=files)
)
st.register_type_strategy(
    contracts.UpdatePipeline, st.builds(contracts.UpdatePipeline, files=files)
)
marks = st.none() | st.uuids().map(lambda value: value.hex)
st.register_type_strategy(
    contracts.FileAdded,
    st.builds(
        contracts.FileAdded,
        size=st.integers(min_value=0),
        sha256=st.none() | st.text("0123456789abcdef", min_size=64, max_size=64),
        mode=st.integers(0, contracts.MAX_FILE_MODE),
        commit=marks,
    ),
)
st.register_type_strategy(
    contracts.CheckUpload,
    st.one_of(
        st.builds(contracts.CheckUpload, commit=marks, release=st.none()),
        st.builds(contracts.CheckUpload, commit=st.none(), release=marks),
    ),
)
st.register_type_strategy(
    contracts.PlatformStopped,
    st.builds(contracts.PlatformStopped, st.dictionaries(st.text(), st.integers(min_value=0))),
)
st.register_type_strategy(
    models_pb2.ModelDetails,
    st.builds(
        models_pb2.ModelDetails, name=st.text(), metadata=st.dictionaries(st.text(), st.text())
    ),
)


def examples(kind: type[Any]) -> st.SearchStrategy[Any]:
    """Values of a contract type; a Clara message has its header or id filled in, so that a
    round trip has something to lose."""
    if not issubclass(kind, Message):
        return st.from_type(kind)
    message = kind()
    for field in kind.DESCRIPTOR.fields:
        if field.message_type is common_pb2.ResponseHeader.DESCRIPTOR:
            getattr(message, field.name).messages.append("a warning")
        elif field.message_type is common_pb2.Identifier.DESCRIPTOR:
            getattr(message, field.name).value = "c" * 32
    return st.just(message)


# Answers that carry a Clara message with its owner (`JobStatus`, `...DetailsItem`).
for answered in (
    jobs_pb2.JobsStatusResponse,
    payloads_pb2.PayloadsDetailsResponse,
    pipelines_pb2.PipelinesDetailsResponse,
):
    st.register_type_strategy(answered, examples(answered))


def by_subject(verb: Contract[Any, Any]) -> str:
    return verb.subject


def test_every_verb_is_declared_once_on_a_subject_of_the_one_list() -> None:
    listed = {value for value in vars(subjects).values() if isinstance(value, str)}
    declared = [verb.subject for verb in VERBS]
    assert len(set(declared)) == len(declared)
    assert contracts.PIPELINES_SNAPSHOT in VERBS and contracts.SCHEDULER_LEADER_LOGS in VERBS
    assert set(declared) <= listed
    assert contracts.PIPELINES_SNAPSHOT.service == "pipelines"
    assert contracts.SCHEDULER_LEADER_LOGS.name == "leader_logs"


@pytest.mark.parametrize("verb", VERBS, ids=by_subject)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_requests_and_answers_survive_the_codec(verb: Contract[Any, Any], data: Any) -> None:
    request = data.draw(examples(verb.request), label="request")
    assert verb.decode_request(verb.encode_request(request)) == request
    answer = data.draw(examples(verb.answer), label="answer")
    assert verb.decode_answer(verb.encode_answer(answer)) == answer


@pytest.mark.parametrize("verb", VERBS, ids=by_subject)
def test_a_malformed_request_is_invalid_with_the_services_code(verb: Contract[Any, Any]) -> None:
    bodies = [b"\xff\xff"] if issubclass(verb.request, Message) else [b"\xff\xff", b"[1]"]
    for body in bodies:
        with pytest.raises(Invalid) as caught:
            verb.decode_request(body)
        assert caught.value.code == REQUEST_INVALID[verb.service]
        assert caught.value.messages[0].startswith(f"malformed {verb.service} {verb.name} request")


@pytest.mark.parametrize("verb", VERBS, ids=by_subject)
def test_a_malformed_answer_is_internal_naming_the_service(verb: Contract[Any, Any]) -> None:
    with pytest.raises(Internal, match=f"the {verb.service} service answered {verb.name} with"):
        verb.decode_answer(b"\xff\xff")


@pytest.mark.parametrize(
    ("verb", "body", "problem"),
    [
        (
            contracts.PIPELINES_SNAPSHOT,
            b'{"pipeline_id": null}',
            "pipeline_id must be a string, not null",
        ),
        (contracts.PIPELINES_CREATE, b'{"files": []}', "files must be a non-empty list"),
        (contracts.PIPELINES_CREATE, b'{"files": [{"path": "p"}]}', "files[0].content is missing"),
        (contracts.PIPELINES_UPDATE, b"not json", "the request is not JSON"),
        (
            contracts.PAYLOADS_CREATE_FOR_JOB,
            b'{"job_id": "' + JOB.encode() + b'", "input_payloads": "x"}',
            "input_payloads must be a list, not a string",
        ),
        (
            contracts.PAYLOADS_FILE_ADDED,
            b'{"payload_id": "' + PAYLOAD.encode() + b'", "name": "x", "size": -1, "sha256": null}',
            "size must be a non-negative integer",
        ),
        (
            contracts.PAYLOADS_CHECK_UPLOAD,
            b'{"payload_id": "' + PAYLOAD.encode() + b'", "commit": "x"}',
            "a commit mark must be 32 lowercase hexadecimal characters or null",
        ),
        (
            contracts.PAYLOADS_CHECK_UPLOAD,
            b'{"payload_id": "' + PAYLOAD.encode() + b'", "commit": "' + JOB.encode() + b'", '
            b'"release": "' + JOB.encode() + b'"}',
            "give commit or release, not both",
        ),
        (
            contracts.MODELS_DOWNLOAD,
            b"\xff\xff",
            "the request is not a valid nvidia.clara.platform.ModelsDownloadModelRequest message",
        ),
    ],
)
def test_a_malformed_request_says_what_is_wrong(
    verb: Contract[Any, Any], body: bytes, problem: str
) -> None:
    with pytest.raises(Invalid) as caught:
        verb.decode_request(body)
    assert caught.value.messages == (f"malformed {verb.service} {verb.name} request: {problem}",)


def test_ids_are_canonical_and_a_malformed_one_keeps_its_own_code() -> None:
    lock = contracts.PAYLOADS_LOCK
    spelled = b'{"payload_id": "' + PAYLOAD.upper().encode() + b'", "job_id": "' + JOB.encode()
    assert lock.decode_request(spelled + b'"}') == contracts.JobPayload(PAYLOAD, JOB)
    with pytest.raises(Invalid) as caught:
        lock.decode_request(b'{"payload_id": "nope", "job_id": "' + JOB.encode() + b'"}')
    assert caught.value.code == ErrorCode.PAYLOAD_ID_INVALID
    with pytest.raises(Invalid) as caught:
        contracts.ReleaseTriton(JobId("nope"))
    assert caught.value.code == ErrorCode.JOB_ID_INVALID
    with pytest.raises(Internal, match="answered create_for_job with a malformed answer"):
        contracts.PAYLOADS_CREATE_FOR_JOB.decode_answer(b'{"payload_id": "nope"}')


def test_the_json_is_what_both_sides_wrote_by_hand_before() -> None:
    location = contracts.ModelLocation(models_pb2.ModelDetails(name="m"), "models/k.zip", 3)
    assert contracts.MODELS_DOWNLOAD.encode_answer(location) == (
        b'{"details":"EgFt","archive_key":"models/k.zip","size":3}'
    )
    assert contracts.PAYLOADS_DISCARD_FOR_JOB.encode_answer(contracts.Discarded(None)) == (
        b'{"payload_id":null}'
    )
    assert contracts.PAYLOADS_LOCK.encode_answer(contracts.Done()) == b"{}"
    upload = contracts.UploadModel("staging/models/x.zip", 1, "", name="näme")
    assert "näme".encode() in contracts.MODELS_UPLOAD.encode_request(upload)


async def test_typed_handlers_answer_typed_calls_over_the_bus() -> None:
    network = MemoryNetwork()
    service_bus, client = MemoryBus(network), MemoryBus(network)
    acquire: Verb[contracts.AcquireTriton, contracts.TritonServer] = contracts.MODELS_ACQUIRE_TRITON
    logs: StreamVerb[contracts.LeaderLogs, contracts.LogLines] = contracts.SCHEDULER_LEADER_LOGS

    async def acquired(request: contracts.AcquireTriton) -> contracts.TritonServer:
        return contracts.TritonServer(f"{request.models[0]}:8001", f"{request.job_id}:8000")

    async def lines(request: contracts.LeaderLogs) -> AsyncGenerator[contracts.LogLines, None]:
        for line in ("one", "two"):
            yield contracts.LogLines((request.run_id, line))

    running = RunningService("models", service_bus)
    await running.serve_verb(acquire, acquired)
    await running.serve_stream(logs.subject, streaming(logs, lines))
    answer = await call(client, acquire, contracts.AcquireTriton(JOB, ("seg",)), timeout=5)
    assert answer == contracts.TritonServer("seg:8001", f"{JOB}:8000")
    streamed = [item async for item in call_stream(client, logs, contracts.LeaderLogs("r"))]
    assert streamed == [contracts.LogLines(("r", "one")), contracts.LogLines(("r", "two"))]
    with pytest.raises(Invalid) as caught:
        await client.request(acquire.subject, b'{"job_id": "' + JOB.encode() + b'"}')
    assert caught.value.code == ErrorCode.MODEL_REQUEST_INVALID
    assert "models is missing" in caught.value.messages[0]
    await running.stop(1.0)
