"""Wait reasons on the wire: the Status message lines every Clara client shows, their typed
form as gRPC metadata, and how the CLI shows both."""

from __future__ import annotations

from typing import Any

from aorta.api import jobs_pb2
from aorta.cli.jobview import JobView
from aorta.wait_reasons import (
    WAITING_METADATA,
    from_metadata,
    is_wait_line,
    job_line,
    lines,
    operator_line,
    parse_line,
    to_metadata,
)

WAITS: dict[str, Any] = {
    "job": {"kind": "held", "text": "held: the node is draining for job abc (waited 16 min)"},
    "operators": {"seg": {"kind": "resources", "text": "needs 1 GPU; résumé 100%"}},
}


def test_the_typed_reasons_survive_the_metadata_in_printable_ascii() -> None:
    [(key, value)] = to_metadata(WAITS)
    assert key == WAITING_METADATA
    assert all(0x20 <= ord(char) < 0x7F for char in value)
    assert from_metadata([("aorta-owner", "x"), (key, value)]) == WAITS
    assert to_metadata({}) == ()
    assert from_metadata(None) == {}
    assert from_metadata([(WAITING_METADATA, "not json")]) == {}


def test_lines_name_the_job_and_each_operator_and_parse_back() -> None:
    made = lines(WAITS)
    assert made == [
        "waiting: held: the node is draining for job abc (waited 16 min)",
        "operator seg waiting: needs 1 GPU; résumé 100%",
    ]
    assert [parse_line(line) for line in made] == [
        ("", WAITS["job"]["text"]),
        ("seg", WAITS["operators"]["seg"]["text"]),
    ]
    assert job_line("x") == "waiting: x" and operator_line("a", "y") == "operator a waiting: y"
    assert not is_wait_line("operator writer CANCELED")
    assert parse_line("the job was canceled") is None


def test_the_cli_shows_a_reason_as_a_waiting_line_and_keeps_the_typed_form() -> None:
    response = jobs_pb2.JobsStatusResponse(
        name="j", messages=["an earlier message", *lines({"operators": WAITS["operators"]})]
    )
    view = JobView.from_status(response, waiting={"operators": WAITS["operators"]})
    assert view.reason() == "seg: needs 1 GPU; résumé 100%"
    assert view.document()["waiting"] == {"operators": WAITS["operators"]}
    quiet = JobView.from_status(jobs_pb2.JobsStatusResponse(name="j", messages=["done"]))
    assert quiet.reason() == "" and quiet.document()["waiting"] is None
