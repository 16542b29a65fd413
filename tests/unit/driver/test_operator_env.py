"""The platform/operator environment contract: path lists, entry names, to_env/from_env."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aorta import operator_env as oe
from aorta.errors import Invalid
from aorta.ids import JobId, PayloadId
from aorta.operator_env import OperatorEnvironment, PathEntry, format_paths, parse_paths

JOB = "0123456789abcdef0123456789abcdef"
PAYLOAD = "fedcba9876543210fedcba9876543210"

_segment = st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True)
_name = st.one_of(_segment, st.tuples(_segment, _segment).map("/".join))
# Any text but ';' (the item separator); ':' is allowed, names never contain it.
_path = st.text(
    alphabet=st.characters(
        blacklist_characters=";", categories=("L", "M", "N", "P", "S", "Z", "Cc")
    ),
    min_size=1,
)
_entries = st.lists(
    st.builds(PathEntry, name=_name, path=_path), max_size=6, unique_by=lambda e: e.name.casefold()
)


@given(_entries)
def test_format_then_parse_gives_the_same_entries(entries: list[PathEntry]) -> None:
    assert parse_paths(format_paths(entries), variable="X") == tuple(entries)


def test_parse_reads_the_odk_examples() -> None:
    assert parse_paths("payload:/input;upstream-op/upstream-output:/input1", variable="X") == (
        PathEntry("payload", "/input"),
        PathEntry("upstream-op/upstream-output", "/input1"),
    )
    assert parse_paths(
        "my-operator/output-segmentation:/output1;my-operator/output-original:/output2",
        variable="X",
    ) == (
        PathEntry("my-operator/output-segmentation", "/output1"),
        PathEntry("my-operator/output-original", "/output2"),
    )


def test_parse_splits_at_the_first_colon_so_paths_may_hold_colons() -> None:
    assert parse_paths("payload:C:\\data\\in", variable="X") == (
        PathEntry("payload", "C:\\data\\in"),
    )
    assert parse_paths("op/out:/a:b", variable="X") == (PathEntry("op/out", "/a:b"),)


def test_parse_of_empty_values_and_trailing_separators() -> None:
    assert parse_paths("", variable="X") == ()
    assert parse_paths("payload:/input;", variable="X") == (PathEntry("payload", "/input"),)


@pytest.mark.parametrize(
    ("value", "item", "why"),
    [
        ("payload", "payload", "no ':'"),
        ("payload:/input;/input1", "/input1", "no ':'"),
        (":/input", ":/input", "malformed name"),
        ("payload:", "payload:", "empty path"),
        ("pay load:/input", "pay load:/input", "malformed name"),
        ("a/b/c:/input", "a/b/c:/input", "malformed name"),
        ("op/:/input", "op/:/input", "malformed name"),
        ("op\n:/input", "op\n:/input", "malformed name"),
    ],
)
def test_parse_names_the_variable_and_the_bad_item(value: str, item: str, why: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_paths(value, variable=oe.INPUT_PATHS)
    message = str(caught.value)
    assert message.startswith(f"{oe.INPUT_PATHS}: ")
    assert repr(item) in message
    assert why in message


def test_parse_refuses_a_name_used_twice_in_any_case() -> None:
    with pytest.raises(Invalid, match="'OP/out' appears more than once"):
        parse_paths("op/out:/a;OP/out:/b", variable=oe.OUTPUT_PATHS)


@pytest.mark.parametrize(
    ("entries", "match"),
    [
        ([PathEntry("payload", "/a;b")], "contains ';'"),
        ([PathEntry("pay:load", "/a")], "malformed name"),
        ([PathEntry("payload", "")], "empty path"),
        ([PathEntry("a", "/x"), PathEntry("A", "/y")], "more than once"),
    ],
)
def test_format_refuses_what_parse_could_not_read_back(
    entries: list[PathEntry], match: str
) -> None:
    with pytest.raises(Invalid, match=match):
        format_paths(entries)


def test_entry_names_follow_the_clara_rules() -> None:
    assert oe.input_entry_name(None, None) == "payload"
    assert oe.input_entry_name("operator1", "segmentation-output") == (
        "operator1/segmentation-output"
    )
    assert oe.input_entry_name("reader", None) == "reader"
    assert oe.output_entry_name("operator2", "final-output") == "operator2/final-output"
    assert oe.output_entry_name("reader", None) == "reader"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: oe.input_entry_name(None, "out"), "no operator"),
        (lambda: oe.input_entry_name("bad name", None), "operator name 'bad name'"),
        (lambda: oe.output_entry_name("op", "out/put"), "output name 'out/put'"),
        (lambda: oe.output_entry_name("", None), "operator name ''"),
        (lambda: oe.output_entry_name("op\n", None), r"operator name 'op\\n'"),
    ],
)
def test_entry_name_helpers_refuse_bad_names(call: object, match: str) -> None:
    with pytest.raises(Invalid, match=match):
        call()  # type: ignore[operator]


def _full() -> OperatorEnvironment:
    return OperatorEnvironment(
        job_id=JobId(JOB),
        job_name="nightly",
        stage_name="operator2",
        stage_timeout=900,
        payload_id=PayloadId(PAYLOAD),
        inputs=(PathEntry("operator1/segmentation-output", "/input"),),
        outputs=(PathEntry("operator2/final-output", "/output"),),
        triton_grpc_uri="triton:8001",
        triton_http_uri="triton:8000",
        variables={"CLARA_TRACE": "2"},
    )


def test_to_env_writes_the_contract_names() -> None:
    env = _full().to_env()
    assert env == {
        "NVIDIA_CLARA_JOBID": JOB,
        "NVIDIA_CLARA_JOBNAME": "nightly",
        "NVIDIA_CLARA_STAGENAME": "operator2",
        "NVIDIA_CLARA_STAGETIMEOUT": "900",
        "NVIDIA_CLARA_PAYLOADID": PAYLOAD,
        "NVIDIA_CLARA_NOSYNCLOCK": "1",
        "NVIDIA_CLARA_INPUTPATHS": "operator1/segmentation-output:/input",
        "NVIDIA_CLARA_OUTPUTPATHS": "operator2/final-output:/output",
        "NVIDIA_TRITON_GRPCURI": "triton:8001",
        "NVIDIA_TRITON_HTTPURI": "triton:8000",
        "CLARA_TRITON_URI": "triton:8000",
        "NVIDIA_CLARA_TRTISURI": "triton:8000",
        "CLARA_TRACE": "2",
    }


def test_to_env_leaves_out_what_is_not_set() -> None:
    env = OperatorEnvironment(
        job_id=JobId(JOB), job_name="j", stage_name="s", nosynclock=False
    ).to_env()
    assert set(env) == {
        oe.JOB_ID,
        oe.JOB_NAME,
        oe.STAGE_NAME,
        oe.STAGE_TIMEOUT,
        oe.INPUT_PATHS,
        oe.OUTPUT_PATHS,
    }


@pytest.mark.parametrize("timeout", [900, 0.5, 1234.125])
def test_to_env_then_from_env_gives_the_same_environment(timeout: float) -> None:
    original = dataclasses.replace(_full(), stage_timeout=timeout)
    assert OperatorEnvironment.from_env(original.to_env()) == original
    plain = OperatorEnvironment(job_id=JobId(JOB), job_name="j", stage_name="s", nosynclock=False)
    assert OperatorEnvironment.from_env(plain.to_env()) == plain


def test_from_env_fills_in_what_a_local_run_leaves_unset() -> None:
    first = OperatorEnvironment.from_env({})
    second = OperatorEnvironment.from_env({})
    assert first.job_id != second.job_id, "each local run is its own job"
    assert uuid.UUID(hex=first.job_id).hex == first.job_id
    assert (first.job_name, first.stage_name) == ("local-job", "local-operator")
    assert first.stage_timeout == 600
    assert first.payload_id is None
    assert (first.inputs, first.outputs) == ((), ())
    assert first.nosynclock is False
    assert (first.triton_grpc_uri, first.triton_http_uri) == (None, None)


def test_from_env_reads_legacy_triton_names_and_keeps_other_variables() -> None:
    env = OperatorEnvironment.from_env(
        {"NVIDIA_CLARA_TRTISURI": "old:8000", "TRITON_MODEL_NAME": "seg", "LANG": "C.UTF-8"}
    )
    assert env.triton_http_uri == "old:8000"
    assert dict(env.variables) == {"TRITON_MODEL_NAME": "seg", "LANG": "C.UTF-8"}
    newer = OperatorEnvironment.from_env(
        {"CLARA_TRITON_URI": "legacy:8000", "NVIDIA_TRITON_HTTPURI": "new:8000"}
    )
    assert newer.triton_http_uri == "new:8000"


def test_from_env_accepts_dashed_ids_and_stores_them_canonical() -> None:
    dashed = str(uuid.UUID(hex=JOB))
    env = OperatorEnvironment.from_env({"NVIDIA_CLARA_JOBID": dashed.upper()})
    assert env.job_id == JOB
    assert env.job_uuid == uuid.UUID(hex=JOB)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("NVIDIA_CLARA_JOBID", "not-an-id"),
        ("NVIDIA_CLARA_PAYLOADID", "1234"),
        ("NVIDIA_CLARA_STAGETIMEOUT", "ten minutes"),
        ("NVIDIA_CLARA_STAGETIMEOUT", "0"),
        ("NVIDIA_CLARA_STAGETIMEOUT", "nan"),
        ("NVIDIA_CLARA_NOSYNCLOCK", "maybe"),
        ("NVIDIA_CLARA_INPUTPATHS", "/input"),
        ("NVIDIA_CLARA_OUTPUTPATHS", "op/out/x:/output"),
    ],
)
def test_from_env_names_the_malformed_variable(variable: str, value: str) -> None:
    with pytest.raises(Invalid, match=variable):
        OperatorEnvironment.from_env({variable: value})


def test_variables_may_not_override_the_contract() -> None:
    with pytest.raises(Invalid, match="NVIDIA_CLARA_JOBID"):
        OperatorEnvironment(
            job_id=JobId(JOB),
            job_name="j",
            stage_name="s",
            variables={"NVIDIA_CLARA_JOBID": "x"},
        )


def test_the_environment_is_frozen_and_hides_variables_from_repr() -> None:
    env = _full()
    assert "CLARA_TRACE" not in repr(env)
    with pytest.raises(TypeError):
        env.variables["CLARA_TRACE"] = "3"  # type: ignore[index]
    assert hash(env) == hash(_full())
