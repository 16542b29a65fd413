"""The operator graph: stable order, cycles, the Details and Status shapes."""

from __future__ import annotations

import pytest

from aorta.errors import ErrorCode, NotFound
from aorta.pipeline_spec import (
    Container,
    DagNode,
    InputSpec,
    JobDagNode,
    Operator,
    OutputSpec,
    Pipeline,
)
from aorta.pipeline_spec.dag import Graph


def graph(edges: dict[str, list[str]], names: str) -> Graph:
    return Graph.build(names.split(), edges)


def test_topological_order_prefers_document_order_among_ready_operators() -> None:
    order = graph({"b": ["d"], "a": ["d"]}, "c b a d").topological_order()

    assert order == ("c", "d", "b", "a")


def test_topological_order_waits_for_every_parent() -> None:
    order = graph({"merge": ["slow", "fast"], "slow": ["start"]}, "merge fast slow start")

    assert order.topological_order() == ("fast", "start", "slow", "merge")


def test_cycles_are_reported_once_each_from_their_first_member() -> None:
    edges = {"a": ["c"], "b": ["a"], "c": ["b"], "x": ["y"], "y": ["x"], "z": ["a"]}

    cycles = graph(edges, "z a b c x y").cycles()

    assert cycles == [["a", "b", "c", "a"], ["x", "y", "x"]]


def test_the_shortest_way_round_is_reported() -> None:
    edges = {"b": ["a"], "c": ["b"], "a": ["c", "b"], "d": ["c"]}

    assert graph(edges, "a b c d").cycles() == [["a", "b", "a"]]


def test_dag_nodes_share_fan_in_nodes_and_count_them_once_per_parent() -> None:
    diamond = graph({"l": ["s"], "r": ["s"], "m": ["l", "r"]}, "s l r m")

    (root,) = diamond.dag_nodes()

    merge = DagNode("m")
    assert root == DagNode("s", (DagNode("l", (merge,)), DagNode("r", (merge,))))
    assert root.next[0].next[0] is root.next[1].next[0]
    assert diamond.expanded_size() == 5


def test_long_chains_need_no_recursion() -> None:
    names = [f"op{i}" for i in range(1000)]
    chain = Graph.build(names, {names[i]: [names[i - 1]] for i in range(1, 1000)})

    assert chain.topological_order() == tuple(names)
    assert chain.expanded_size() == 1000
    assert chain.dag_nodes()[0].name == "op0"
    assert chain.cycles() == []


def test_job_dag_lists_what_each_operator_waits_for() -> None:
    job = graph({"m": ["r", "l"], "l": ["s"], "r": ["s"]}, "s l r m").job_dag()

    assert job == (
        JobDagNode("s"),
        JobDagNode("l", ("s",), ("s",)),
        JobDagNode("r", ("s",), ("s",)),
        JobDagNode("m", ("l", "r"), ("l", "r")),
    )


def coded_pipeline() -> Pipeline:
    def op(name: str, *sources: str) -> Operator:
        inputs = tuple(InputSpec(f"/in{i}", source) for i, source in enumerate(sources))
        return Operator(name, Container("x"), inputs=inputs, outputs=(OutputSpec(path="/out"),))

    return Pipeline(
        "coded", "0.4.0", (op("Reader"), op("ai", "Reader"), op("writer", "ai", "Reader", "ai"))
    )


def test_pipeline_answers_dag_questions_in_any_case() -> None:
    pipeline = coded_pipeline()

    assert pipeline.upstream("WRITER") == frozenset({"ai", "Reader"})
    assert pipeline.downstream("reader") == frozenset({"ai", "writer"})
    assert pipeline.roots() == ("Reader",)
    assert pipeline.operator("AI").input_dependencies == ("Reader",)
    assert pipeline.operator("writer").input_dependencies == ("ai", "Reader")


def test_unknown_operator_is_not_found_with_the_jobs_code() -> None:
    with pytest.raises(NotFound) as raised:
        coded_pipeline().upstream("nobody")

    assert raised.value.code == ErrorCode.JOB_OPERATOR_NOT_FOUND
    assert "has no operator 'nobody'" in raised.value.messages[0]
