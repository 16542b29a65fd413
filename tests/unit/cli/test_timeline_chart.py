"""`aorta describe job --timeline`: the Gantt chart and the numbers of `-o json`."""

from __future__ import annotations

from aorta.api import aorta_jobs_pb2, common_pb2
from aorta.cli.timeline import MARKS, WIDTH, Timeline


def response() -> aorta_jobs_pb2.JobsTimelineResponse:
    answer = aorta_jobs_pb2.JobsTimelineResponse(
        job_id=common_pb2.Identifier(value="1" * 32),
        name="ct-seg",
        trace_id="ab" * 16,
        created=90.0,
        enqueued=100.0,
        admitted=101.0,
        stopped=148.0,
        triton_requested=100.5,
        triton_acquired=101.0,
    )
    answer.attempts.add(
        operator="convert",
        attempt=1,
        executor="local",
        outcome="completed",
        ready=101.0,
        admitted=101.0,
        staging=101.0,
        running=102.0,
        exited=110.0,
        stored=112.0,
    )
    answer.attempts.add(
        operator="segment",
        attempt=1,
        executor="local",
        outcome="",
        ready=112.0,
        admitted=124.0,
        staging=124.0,
        running=125.0,
    )
    return answer


def test_the_numbers_name_every_time_and_stage() -> None:
    document = Timeline.from_response(response()).document()
    assert document["trace_id"] == "ab" * 16
    assert (document["queue_wait"], document["triton_wait"]) == (1.0, 0.5)
    convert, segment = document["operators"]
    assert convert["stages"] == {"waiting": 0.0, "staging": 1.0, "running": 8.0, "storing": 2.0}
    assert convert["wall"] == 11.0
    assert (convert["ready"], convert["stored"], convert["outcome"]) == (101.0, 112.0, "completed")
    assert segment["stages"] == {
        "waiting": 12.0,
        "staging": 1.0,
        "running": None,
        "storing": None,
    }
    assert (segment["exited"], segment["wall"], segment["outcome"]) == (None, None, None)


def test_the_chart_draws_each_stage_in_its_place_on_one_axis() -> None:
    lines = Timeline.from_response(response()).lines(now=150.0)
    assert lines[0] == f"job ct-seg (trace {'ab' * 16})"
    rows = {line.split()[0]: line for line in lines[2:-1]}
    assert set(rows) == {"queued", "triton", "convert", "segment"}
    pad = lines[2].index(lines[2].split()[1])
    bars = {name: row[pad : pad + WIDTH] for name, row in rows.items()}
    # 48 s from Start to the stop on 48 columns: one column a second.
    assert bars["queued"] == "█" + " " * (WIDTH - 1)
    convert = bars["convert"]
    assert convert[1] == MARKS["staging"] and convert[2:10] == MARKS["running"] * 8
    assert convert[10:12] == MARKS["storing"] * 2 and convert[12:].strip() == ""
    segment = bars["segment"]
    assert segment[12:24] == MARKS["waiting"] * 12 and segment[24] == MARKS["staging"]
    # Still running: its bar runs to the end of the axis.
    assert segment[25:] == MARKS["running"] * (WIDTH - 25)
    assert "11.0s [completed]" in rows["convert"]
    assert "staging 1.00s, running 8.00s, storing 2.00s" in rows["convert"]
    assert "[running]" in rows["segment"]
    assert lines[-1].startswith("marks: ")


def test_a_job_not_started_yet_still_draws() -> None:
    answer = aorta_jobs_pb2.JobsTimelineResponse(name="waiting", created=10.0)
    lines = Timeline.from_response(answer).lines(now=20.0)
    assert lines[0] == "job waiting"
    assert lines[2].startswith("queued") and lines[2].rstrip().endswith("-")
