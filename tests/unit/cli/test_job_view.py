"""A job as the CLI shows it: DAG trees from either wire shape, stable key lines, JSON."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text

from aorta.api import jobs_pb2, pipelines_pb2
from aorta.cli import dag as dags
from aorta.cli.jobview import JobView
from aorta.cli.output import plain
from aorta.timestamps import to_clara_seconds

Node = jobs_pb2.JobsStatusResponse.JobDagNode
NOW = datetime(2024, 5, 1, 12, 0, 10, tzinfo=UTC)


def _fan_in_flat() -> list[jobs_pb2.JobsStatusResponse.JobDagNode]:
    return [
        Node(name="reader"),
        Node(name="seg", input_dependencies=[Node(name="reader")]),
        Node(name="classify", input_dependencies=[Node(name="reader")]),
        Node(name="writer", input_dependencies=[Node(name="seg"), Node(name="classify")]),
    ]


def _fan_in_nested() -> list[jobs_pb2.JobsStatusResponse.JobDagNode]:
    reader = Node(name="reader")
    seg = Node(name="seg", input_dependencies=[reader])
    classify = Node(name="classify", order_dependencies=[reader])
    return [Node(name="writer", input_dependencies=[seg, classify])]


def test_flat_and_nested_job_dags_give_the_same_edges() -> None:
    flat, nested = dags.from_job(_fan_in_flat()), dags.from_job(_fan_in_nested())
    assert (
        sorted(flat.edges())
        == sorted(nested.edges())
        == [
            ("classify", "writer"),
            ("reader", "classify"),
            ("reader", "seg"),
            ("seg", "writer"),
        ]
    )
    assert flat.roots == nested.roots == ["reader"]


def test_a_pipeline_dag_reads_next_links() -> None:
    pnode = pipelines_pb2.PipelinesDetailsResponse.PipelineDagNode
    root = pnode(name="a", next=[pnode(name="b", next=[pnode(name="c")]), pnode(name="c")])
    assert dags.from_pipeline([root]).edges() == [("a", "b"), ("a", "c"), ("b", "c")]


def test_a_shared_downstream_is_drawn_in_full_once() -> None:
    tree = dags.tree(dags.from_job(_fan_in_flat()), Text("ops"), Text)
    assert plain(tree).splitlines() == [
        "ops",
        "└── reader",
        "    ├── seg",
        "    │   └── writer",
        "    └── classify",
        "        └── writer",
    ]


def _status() -> jobs_pb2.JobsStatusResponse:
    response = jobs_pb2.JobsStatusResponse(
        name="night-run",
        state=jobs_pb2.JOB_STATE_RUNNING,
        status=jobs_pb2.JOB_STATUS_HEALTHY,
        priority=jobs_pb2.JOB_PRIORITY_HIGHER,
        messages=["queued behind 2 jobs"],
        metadata={"ward": "icu"},
        dag=_fan_in_flat()[:2],
    )
    response.job_id.value, response.pipeline_id.value = "1" * 32, "2" * 32
    response.payload_id.value = "3" * 32
    response.created.value = to_clara_seconds(datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC))
    response.started.value = to_clara_seconds(datetime(2024, 5, 1, 12, 0, 1, tzinfo=UTC))
    done = response.operator_details.add(
        name="reader", status=jobs_pb2.JOB_OPERATOR_STATUS_COMPLETED
    )
    done.started.value = response.started.value
    done.stopped.value = response.started.value + 4
    running = response.operator_details.add(name="seg", status=jobs_pb2.JOB_OPERATOR_STATUS_RUNNING)
    running.started.value = response.started.value + 4
    return response


def test_the_description_starts_with_stable_key_lines_then_the_tree() -> None:
    lines = plain(JobView.from_status(_status()).renderable(NOW)).splitlines()
    assert lines == [
        "name: night-run",
        f"id: {'1' * 32}",
        f"pipeline: {'2' * 32}",
        f"payload: {'3' * 32}",
        "state: RUNNING",
        "status: HEALTHY",
        "priority: HIGHER",
        "created: 2024-05-01 12:00:00Z",
        "started: 2024-05-01 12:00:01Z",
        "stopped: -",
        "duration: 9s",
        "message: queued behind 2 jobs",
        "metadata.ward: icu",
        "operators",
        "└── ✓ reader  COMPLETED  4s",
        "    └── ● seg  RUNNING  5s",
    ]


def test_the_creator_follows_the_creation_time_when_the_platform_names_it() -> None:
    view = JobView.from_status(_status(), owner="alice")
    lines = plain(view.renderable(NOW)).splitlines()
    assert lines[7:9] == ["created: 2024-05-01 12:00:00Z", "created by: alice"]
    assert view.document()["created_by"] == "alice"


def test_the_json_document_shape() -> None:
    view = JobView.from_status(_status())
    document = view.document()
    assert document == {
        "job_id": "1" * 32,
        "name": "night-run",
        "pipeline_id": "2" * 32,
        "payload_id": "3" * 32,
        "state": "RUNNING",
        "status": "HEALTHY",
        "priority": "HIGHER",
        "created": "2024-05-01T12:00:00Z",
        "started": "2024-05-01T12:00:01Z",
        "stopped": None,
        "created_by": None,
        "trace_id": None,
        "messages": ["queued behind 2 jobs"],
        "waiting": None,
        "metadata": {"ward": "icu"},
        "operators": [
            {
                "name": "reader",
                "status": "COMPLETED",
                "clara_status": "COMPLETED",
                "started": "2024-05-01T12:00:01Z",
                "stopped": "2024-05-01T12:00:05Z",
                "upstream": [],
            },
            {
                "name": "seg",
                "status": "RUNNING",
                "clara_status": "RUNNING",
                "started": "2024-05-01T12:00:05Z",
                "stopped": None,
                "upstream": ["reader"],
            },
        ],
    }
    assert (view.finished, view.exit_code) == (False, 0)


def test_an_operator_a_cancel_stopped_shows_canceled_and_keeps_its_wire_status() -> None:
    response = _status()
    response.state, response.status = jobs_pb2.JOB_STATE_STOPPED, jobs_pb2.JOB_STATUS_CANCELED
    response.operator_details[1].status = jobs_pb2.JOB_OPERATOR_STATUS_FAULTED
    response.operator_details[1].stopped.value = response.started.value + 6
    response.header.messages.extend(["operator seg CANCELED", "operator reader CANCELED"])
    view = JobView.from_status(response)
    assert (view.operator("seg").status, view.operator("seg").clara_status) == (
        "CANCELED",
        "FAULTED",
    )
    # Only a FAULTED operator takes the header's word: a completed one stays completed.
    assert view.operator("reader").status == "COMPLETED"
    assert plain(view.renderable(NOW)).splitlines()[-1] == "    └── ⊘ seg  CANCELED  2s"
    seg = view.document()["operators"][1]
    assert (seg["status"], seg["clara_status"]) == ("CANCELED", "FAULTED")


def test_only_a_healthy_stop_exits_0() -> None:
    for status, code in (
        (jobs_pb2.JOB_STATUS_HEALTHY, 0),
        (jobs_pb2.JOB_STATUS_FAULTED, 1),
        (jobs_pb2.JOB_STATUS_CANCELED, 1),
        (jobs_pb2.JOB_STATUS_TERMINATED, 1),
        (jobs_pb2.JOB_STATUS_EVICTED, 1),
    ):
        response = _status()
        response.state, response.status = jobs_pb2.JOB_STATE_STOPPED, status
        view = JobView.from_status(response)
        assert (view.finished, view.exit_code) == (True, code)


def test_operators_without_a_dag_still_appear() -> None:
    response = _status()
    del response.dag[:]
    view = JobView.from_status(response)
    assert view.dag.nodes == ["reader", "seg"] and view.dag.edges() == []
