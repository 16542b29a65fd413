"""Our `aorta.api` against NVIDIA's client: the same wire API, element by element.

NVIDIA's descriptors are read in the Clara client's own virtualenv and process (they cannot
share a process with ours) and compared by full proto name with ours. Then real messages cross
between the two protobuf runtimes in both directions, as they will on the wire.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest
from google.protobuf import text_format
from google.protobuf.message import Message

from aorta.api import (
    clara_pb2,
    common_pb2,
    jobs_pb2,
    models_pb2,
    node_monitor_pb2,
    payloads_pb2,
    pipelines_pb2,
)
from aorta.testing.clara_client import run_clara_python
from aorta.testing.descriptors import JsonObject, describe_files, differences, module_source

OUR_MODULES: list[ModuleType] = [
    common_pb2,
    clara_pb2,
    jobs_pb2,
    models_pb2,
    payloads_pb2,
    pipelines_pb2,
    node_monitor_pb2,
]

DESCRIBE_NVIDIA = """
import json
from nvidia_clara.grpc import (
    clara_pb2, common_pb2, jobs_pb2, metrics_pb2, models_pb2, payloads_pb2, pipelines_pb2,
)
modules = [common_pb2, clara_pb2, jobs_pb2, models_pb2, payloads_pb2, pipelines_pb2, metrics_pb2]
print(json.dumps(describe_files(module.DESCRIPTOR for module in modules)))
"""

KINDS = ("services", "messages", "enums")


@pytest.fixture(scope="module")
def nvidia() -> JsonObject:
    result = run_clara_python(module_source() + DESCRIBE_NVIDIA)
    assert result.returncode == 0, result.stderr
    described: JsonObject = json.loads(result.stdout)
    return described


@pytest.fixture(scope="module")
def ours() -> JsonObject:
    return describe_files(module.DESCRIPTOR for module in OUR_MODULES)


def test_nvidia_description_records_what_the_wire_depends_on(nvidia: JsonObject) -> None:
    # Guards the comparison below: two empty or shallow descriptions would compare equal.
    assert set(nvidia["services"]) == {
        "nvidia.clara.platform.Clara",
        "nvidia.clara.platform.Jobs",
        "nvidia.clara.platform.Models",
        "nvidia.clara.platform.Payloads",
        "nvidia.clara.platform.Pipelines",
        "nvidia.clara.platform.node_monitor.Monitor",
    }
    upload = nvidia["services"]["nvidia.clara.platform.Payloads"]["methods"]["Upload"]
    assert upload == {
        "input_type": "nvidia.clara.platform.PayloadsUploadRequest",
        "output_type": "nvidia.clara.platform.PayloadsUploadResponse",
        "client_streaming": True,
        "server_streaming": False,
    }
    variables = nvidia["messages"]["nvidia.clara.platform.JobsStartRequest"]["fields"]["Variables"]
    assert variables["number"] == 3
    assert variables["label"] == "LABEL_REPEATED"
    assert variables["type_name"] == "nvidia.clara.platform.JobsStartRequest.NamedValue"
    assert variables["json_name"] == "Variables"
    assert nvidia["messages"]["nvidia.clara.platform.JobsCreateRequest.MetadataEntry"]["map_entry"]
    code = nvidia["messages"]["nvidia.clara.platform.ResponseHeader"]["fields"]["code"]
    assert code["type"] == "TYPE_SINT32"
    has_state = nvidia["messages"]["nvidia.clara.platform.JobsListRequest.JobFilter"]["fields"][
        "has_state"
    ]
    assert has_state["packed"]
    assert (
        nvidia["enums"]["nvidia.clara.platform.JobStatus"]["values"]["JOB_STATUS_TERMINATED"] == 5
    )


@pytest.mark.parametrize("kind", KINDS)
def test_same_names_on_both_sides(nvidia: JsonObject, ours: JsonObject, kind: str) -> None:
    missing = sorted(set(nvidia[kind]) - set(ours[kind]))
    extra = sorted(set(ours[kind]) - set(nvidia[kind]))
    assert not missing and not extra, f"{kind}: missing {missing}, not in NVIDIA's {extra}"


def test_same_methods_in_every_service(nvidia: JsonObject, ours: JsonObject) -> None:
    for name, service in nvidia["services"].items():
        assert set(ours["services"][name]["methods"]) == set(service["methods"]), name


def test_every_element_matches(nvidia: JsonObject, ours: JsonObject) -> None:
    found = differences(nvidia, ours)
    assert not found, "our API departs from NVIDIA's:\n" + "\n".join(found)


def _status_response() -> jobs_pb2.JobsStatusResponse:
    dag = jobs_pb2.JobsStatusResponse.JobDagNode
    reader = dag(name="reader")
    return jobs_pb2.JobsStatusResponse(
        header=common_pb2.ResponseHeader(code=-0x2001, messages=["no such job"]),
        job_id=common_pb2.Identifier(value="0" * 32),
        state=jobs_pb2.JOB_STATE_STOPPED,
        status=jobs_pb2.JOB_STATUS_TERMINATED,
        priority=jobs_pb2.JOB_PRIORITY_IMMEDIATE,
        created=common_pb2.Timestamp(value=63_900_000_000),
        stopped=common_pb2.Timestamp(value=-1),
        operator_details=[
            jobs_pb2.JobsStatusResponse.JobOperatorDetails(
                name="reader", status=jobs_pb2.JOB_OPERATOR_STATUS_FAULTED
            )
        ],
        metadata={"b": "2", "a": "1"},
        dag=[dag(name="writer", input_dependencies=[reader], order_dependencies=[reader])],
        messages=["timed out"],
        timestamp_created="2026-11-21 06:41:00Z",
    )


# Messages that exercise every kind of field the API uses, with values that matter on the
# wire: negative sint32/sint64, enums, maps, recursion, bytes, uint64 beyond 32 bits.
SAMPLES: dict[str, Message] = {
    "jobs_pb2.JobsStatusResponse": _status_response(),
    "jobs_pb2.JobsStartRequest": jobs_pb2.JobsStartRequest(
        Variables=[jobs_pb2.JobsStartRequest.NamedValue(name="threshold", value="0.5")]
    ),
    "jobs_pb2.JobsListRequest": jobs_pb2.JobsListRequest(
        filter=jobs_pb2.JobsListRequest.JobFilter(
            has_state=[jobs_pb2.JOB_STATE_PENDING, jobs_pb2.JOB_STATE_RUNNING],
            has_status=[jobs_pb2.JOB_STATUS_FAULTED],
        )
    ),
    "payloads_pb2.PayloadsUploadRequest": payloads_pb2.PayloadsUploadRequest(
        details=payloads_pb2.PayloadFileDetails(name="ct/0001.dcm", size=2**40, mode=0o644),
        data=bytes(range(256)),
    ),
    "models_pb2.ModelsUploadModelRequest": models_pb2.ModelsUploadModelRequest(
        details=models_pb2.ModelDetails(
            name="liver", type=models_pb2.MODEL_TYPE_PY_TORCH, metadata={"k": "v"}
        ),
    ),
    "pipelines_pb2.PipelinesDetailsResponse": pipelines_pb2.PipelinesDetailsResponse(
        dag=[
            pipelines_pb2.PipelinesDetailsResponse.PipelineDagNode(
                name="a", next=[pipelines_pb2.PipelinesDetailsResponse.PipelineDagNode(name="b")]
            )
        ],
    ),
}

# The Clara side parses each of our messages with its own class, prints it as text and sends
# back its own serialisation. Clara's module for node_monitor is `metrics_pb2`.
ROUND_TRIP_NVIDIA = """
import importlib, json, sys
from google.protobuf import text_format
out = {}
for name, hex_bytes in json.loads(sys.argv[1]).items():
    module_name, message_name = name.split(".")
    module = importlib.import_module("nvidia_clara.grpc." + module_name)
    message = getattr(module, message_name).FromString(bytes.fromhex(hex_bytes))
    assert not message.UnknownFields(), name
    out[name] = {
        "text": text_format.MessageToString(message),
        "bytes": message.SerializeToString(deterministic=True).hex(),
    }
print(json.dumps(out))
"""


def test_messages_cross_between_the_two_runtimes() -> None:
    sent = {
        name: message.SerializeToString(deterministic=True).hex()
        for name, message in SAMPLES.items()
    }
    result = run_clara_python(ROUND_TRIP_NVIDIA, args=[json.dumps(sent)])
    assert result.returncode == 0, result.stderr
    received: dict[str, Any] = json.loads(result.stdout)
    for name, message in SAMPLES.items():
        assert received[name]["text"] == text_format.MessageToString(message), name
        echoed = type(message).FromString(bytes.fromhex(received[name]["bytes"]))
        assert echoed == message, name
