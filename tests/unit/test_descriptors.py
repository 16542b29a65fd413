"""`describe_files` records what the wire depends on, and `differences` names every change."""

from __future__ import annotations

import copy
import json

import pytest

from aorta.api import clara_pb2, common_pb2, jobs_pb2
from aorta.testing.descriptors import JsonObject, describe_files, differences, module_source


@pytest.fixture
def described() -> JsonObject:
    return describe_files([common_pb2.DESCRIPTOR, clara_pb2.DESCRIPTOR, jobs_pb2.DESCRIPTOR])


def test_description_is_json_and_keyed_by_full_name(described: JsonObject) -> None:
    assert json.loads(json.dumps(described)) == described
    start = described["messages"]["nvidia.clara.platform.JobsStartRequest"]
    assert start["fields"]["Variables"] == {
        "number": 3,
        "type": "TYPE_MESSAGE",
        "label": "LABEL_REPEATED",
        "type_name": "nvidia.clara.platform.JobsStartRequest.NamedValue",
        "json_name": "Variables",
        "oneof": None,
        "packed": False,
        "deprecated": False,
    }
    assert "nvidia.clara.platform.JobsStartRequest.NamedValue" in described["messages"]
    entry = described["messages"]["nvidia.clara.platform.JobsAddMetadataRequest.MetadataEntry"]
    assert entry["map_entry"] is True
    utilization = described["services"]["nvidia.clara.platform.Clara"]["methods"]["Utilization"]
    assert utilization["server_streaming"] is True
    assert utilization["client_streaming"] is False
    assert described["enums"]["nvidia.clara.platform.JobState"]["values"]["JOB_STATE_STOPPED"] == 3


def test_identical_descriptions_have_no_differences(described: JsonObject) -> None:
    assert differences(described, copy.deepcopy(described)) == []


START = "message nvidia.clara.platform.JobsStartRequest"
JOBS = "service nvidia.clara.platform.Jobs"


def _changed(described: JsonObject, path: list[str], value: object) -> JsonObject:
    changed = copy.deepcopy(described)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


@pytest.mark.parametrize(
    ("path", "value", "line"),
    [
        (
            ["messages", "nvidia.clara.platform.JobsStartRequest", "fields", "Variables", "number"],
            4,
            f"{START}: field Variables: number: expected 3, got 4",
        ),
        (
            ["messages", "nvidia.clara.platform.ResponseHeader", "fields", "code", "type"],
            "TYPE_INT32",
            "message nvidia.clara.platform.ResponseHeader: field code: type: "
            "expected 'TYPE_SINT32', got 'TYPE_INT32'",
        ),
        (
            ["services", "nvidia.clara.platform.Jobs", "methods", "List", "server_streaming"],
            False,
            f"{JOBS}: method List: server_streaming: expected True, got False",
        ),
        (
            ["enums", "nvidia.clara.platform.JobStatus", "values", "JOB_STATUS_TERMINATED"],
            6,
            "enum nvidia.clara.platform.JobStatus: value JOB_STATUS_TERMINATED: expected 5, got 6",
        ),
        (
            ["messages", "nvidia.clara.platform.JobsCreateRequest.MetadataEntry", "map_entry"],
            False,
            "message nvidia.clara.platform.JobsCreateRequest.MetadataEntry: map_entry: "
            "expected True, got False",
        ),
    ],
)
def test_a_changed_attribute_is_named(
    described: JsonObject, path: list[str], value: object, line: str
) -> None:
    assert differences(described, _changed(described, path, value)) == [line]


def test_missing_and_unexpected_elements_are_named(described: JsonObject) -> None:
    changed = copy.deepcopy(described)
    del changed["messages"]["nvidia.clara.platform.JobsStartRequest.NamedValue"]
    del changed["services"]["nvidia.clara.platform.Jobs"]["methods"]["Cancel"]
    changed["enums"]["nvidia.clara.platform.JobState"]["values"]["JOB_STATE_PAUSED"] = 4
    renamed = changed["messages"]["nvidia.clara.platform.JobsStartRequest"]["fields"]
    renamed["variables"] = renamed.pop("Variables")
    assert differences(described, changed) == [
        "enum nvidia.clara.platform.JobState: value JOB_STATE_PAUSED: unexpected",
        f"{START}: field Variables: missing",
        f"{START}: field variables: unexpected",
        "message nvidia.clara.platform.JobsStartRequest.NamedValue: missing",
        f"{JOBS}: method Cancel: missing",
    ]


def test_module_source_runs_on_its_own() -> None:
    namespace: dict[str, object] = {"__name__": "descriptors_copy"}
    exec(compile(module_source(), "descriptors.py", "exec"), namespace)
    describe = namespace["describe_files"]
    assert callable(describe)
    assert describe([jobs_pb2.DESCRIPTOR]) == describe_files([jobs_pb2.DESCRIPTOR])
