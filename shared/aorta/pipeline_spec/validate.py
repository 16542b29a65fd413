"""Checks that span operators: unique names, paths, links between operators, and the DAG.

Every `from` must name another operator of the pipeline (names compare ignoring case; a close
miss gets a "did you mean"); `name` must pick one of its outputs, and without `name` the
operator read must have exactly one output. Links are rewritten to the spelling of what they
reference. In typed pipelines a linked input and output that both declare a type must agree:
same type, same element type (stream element types compare ignoring case), same number of
dimensions with equal sizes where neither is -1; `string` is a `uint8` array of shape [-1].
"""

from __future__ import annotations

import difflib
from dataclasses import replace

from aorta.pipeline_spec.dag import Graph
from aorta.pipeline_spec.diagnostics import DEFINITION, Mark, Report
from aorta.pipeline_spec.io_spec import IoMarks
from aorta.pipeline_spec.model import InputSpec, Operator, OutputSpec
from aorta.pipeline_spec.parse import OperatorDraft
from aorta.pipeline_spec.templates import has_placeholder

MAX_DAG_NODES = 100_000
"""Most nodes the `Pipelines.Details` DAG may expand to (a fan-in node counts once per parent)."""

_Edges = dict[tuple[str, str], Mark]


def check_operators(
    drafts: list[OperatorDraft], pipeline_timeout: int | str | None, report: Report
) -> tuple[Operator, ...]:
    """The operators with links resolved; every problem found is reported."""
    by_name = _unique_names(drafts, report)
    edges: _Edges = {}
    operators = []
    for draft in drafts:
        _check_outputs(draft, report)
        _check_paths(draft, report)
        operators.append(_linked(draft, by_name, edges, report))
        _check_timeout(draft, pipeline_timeout, report)
    upstream: dict[str, list[str]] = {op.name: [] for op in operators}
    for reader, source in edges:
        upstream[reader].append(source)
    graph = Graph.build([op.name for op in operators], upstream)
    for cycle in graph.cycles():
        report.error(
            edges[(cycle[0], cycle[-2])],
            "the operators form a cycle: " + " -> ".join(cycle),
            DEFINITION,
        )
    if drafts and not report.has_errors and graph.expanded_size() > MAX_DAG_NODES:
        report.error(
            drafts[0].mark,
            f"the DAG expands to more than {MAX_DAG_NODES} nodes in Pipelines.Details (too many "
            "fan-ins below fan-outs)",
            DEFINITION,
        )
    return tuple(operators)


def _unique_names(drafts: list[OperatorDraft], report: Report) -> dict[str, OperatorDraft]:
    by_name: dict[str, OperatorDraft] = {}
    for draft in drafts:
        name = draft.operator.name
        first = by_name.get(name.lower())
        if first is None:
            by_name[name.lower()] = draft
            continue
        report.error(
            draft.name_mark,
            f"operator name {name!r} is already used by operator {first.operator.name!r} at "
            f"line {first.name_mark.line} (names are not case-sensitive)",
            DEFINITION,
        )
    return by_name


def _check_outputs(draft: OperatorDraft, report: Report) -> None:
    owner = f"operator {draft.operator.name!r}"
    outputs = draft.operator.outputs
    seen: dict[str, Mark] = {}
    for index, (spec, marks) in enumerate(zip(outputs, draft.outputs, strict=True)):
        if spec.name is None:
            if len(outputs) > 1:
                report.error(
                    marks.item,
                    f"output #{index + 1} of {owner} needs a `name`: an operator with "
                    f"{len(outputs)} outputs names each of them",
                    DEFINITION,
                )
            continue
        at = marks.name or marks.item
        first = seen.get(spec.name.lower())
        if first is None:
            seen[spec.name.lower()] = at
            continue
        report.error(
            at,
            f"{owner} has two outputs named {spec.name!r} (also at line {first.line})",
            DEFINITION,
        )


def _check_paths(draft: OperatorDraft, report: Report) -> None:
    owner = f"operator {draft.operator.name!r}"
    used: dict[str, tuple[str, Mark]] = {}
    entries = [
        *(("input", i, spec.path, marks) for i, (spec, marks) in _paired(draft, inputs=True)),
        *(("output", i, spec.path, marks) for i, (spec, marks) in _paired(draft, inputs=False)),
    ]
    for kind, index, path, marks in entries:
        if path is None or has_placeholder(path):
            continue
        where = marks.path or marks.item
        label = f"{kind} #{index + 1}"
        first = used.get(path)
        if first is None:
            used[path] = (label, where)
            continue
        report.error(
            where,
            f"the path {path!r} of {label} of {owner} is also the path of its {first[0]} "
            f"(line {first[1].line}); each input and output needs its own folder",
            DEFINITION,
        )


def _paired(
    draft: OperatorDraft, *, inputs: bool
) -> list[tuple[int, tuple[InputSpec | OutputSpec, IoMarks]]]:
    specs: tuple[InputSpec | OutputSpec, ...] = (
        draft.operator.inputs if inputs else draft.operator.outputs
    )
    marks = draft.inputs if inputs else draft.outputs
    return list(enumerate(zip(specs, marks, strict=True)))


def _linked(
    draft: OperatorDraft, by_name: dict[str, OperatorDraft], edges: _Edges, report: Report
) -> Operator:
    operator = draft.operator
    linked = []
    for index, (spec, marks) in enumerate(zip(operator.inputs, draft.inputs, strict=True)):
        if spec.from_operator is None:
            linked.append(spec)
            continue
        what = f"input #{index + 1} of operator {operator.name!r}"
        at = marks.from_ or marks.item
        target = by_name.get(spec.from_operator.lower())
        if target is None:
            report.error(at, _dangling(spec.from_operator, what, by_name), DEFINITION)
            linked.append(spec)
            continue
        if target.operator.name.lower() == operator.name.lower():
            report.error(
                at,
                f"{what} reads from its own operator: an operator cannot depend on itself",
                DEFINITION,
            )
            linked.append(spec)
            continue
        edges.setdefault((operator.name, target.operator.name), at)
        output = _output(spec, marks, what, target, report)
        if output is None:
            linked.append(replace(spec, from_operator=target.operator.name))
            continue
        _check_types(spec, output, what, target.operator.name, at, report)
        linked.append(replace(spec, from_operator=target.operator.name, output_name=output.name))
    return replace(operator, inputs=tuple(linked))


def _dangling(name: str, what: str, by_name: dict[str, OperatorDraft]) -> str:
    message = f"{what} reads from {name!r}, which is not an operator of this pipeline"
    close = difflib.get_close_matches(name.lower(), list(by_name), n=1, cutoff=0.6)
    if close:
        return message + f"; did you mean {by_name[close[0]].operator.name!r}?"
    return message


def _output(
    spec: InputSpec, marks: IoMarks, what: str, target: OperatorDraft, report: Report
) -> OutputSpec | None:
    source = target.operator
    outputs = source.outputs
    names = [output.name for output in outputs if output.name is not None]
    if spec.output_name is None:
        if len(outputs) == 1:
            return outputs[0]
        problem = (
            f"{what} reads from operator {source.name!r}, which declares no outputs"
            if not outputs
            else f"{what} reads from operator {source.name!r}, which has {len(outputs)} outputs "
            f"({', '.join(names)}); add `name` to pick one"
        )
        report.error(marks.from_ or marks.item, problem, DEFINITION)
        return None
    for output in outputs:
        if output.name is not None and output.name.lower() == spec.output_name.lower():
            return output
    if not names:
        detail = "its only output has no name; remove `name`" if outputs else "it has no outputs"
    else:
        detail = f"its outputs: {', '.join(names)}"
    report.error(
        marks.name or marks.item,
        f"{what} reads output {spec.output_name!r} of operator {source.name!r}, which has no "
        f"output by that name ({detail})",
        DEFINITION,
    )
    return None


def _check_types(
    spec: InputSpec, output: OutputSpec, what: str, source: str, at: Mark, report: Report
) -> None:
    if spec.type is None or output.type is None:
        return
    wanted = _signature(spec.type, spec.element_type, spec.shape)
    given = _signature(output.type, output.element_type, output.shape)
    if wanted[:2] == given[:2] and _shapes_agree(wanted[2], given[2]):
        return
    report.error(
        at,
        f"{what} expects {_describe(spec.type, spec.element_type, spec.shape)} but output "
        f"{output.name or '(unnamed)'!r} of operator {source!r} gives "
        f"{_describe(output.type, output.element_type, output.shape)}",
        DEFINITION,
    )


def _signature(
    kind: str, element: str | None, shape: tuple[int, ...] | None
) -> tuple[str, str | None, tuple[int, ...] | None]:
    if kind == "string":
        return "array", "uint8", (-1,)
    return kind, element.lower() if element is not None else None, shape


def _shapes_agree(left: tuple[int, ...] | None, right: tuple[int, ...] | None) -> bool:
    if left is None or right is None:
        return left == right
    return len(left) == len(right) and all(
        a == b or -1 in (a, b) for a, b in zip(left, right, strict=True)
    )


def _describe(kind: str, element: str | None, shape: tuple[int, ...] | None) -> str:
    text = kind if element is None else f"{kind} of {element}"
    return text if shape is None else f"{text} {list(shape)}"


def _check_timeout(draft: OperatorDraft, pipeline: int | str | None, report: Report) -> None:
    own = draft.operator.timeout
    if isinstance(own, int) and isinstance(pipeline, int) and own > pipeline:
        report.warning(
            draft.timeout_mark or draft.mark,
            f"operator {draft.operator.name!r} may run {own} s but the whole job only "
            f"{pipeline} s; the job's timeout ends it first",
        )
