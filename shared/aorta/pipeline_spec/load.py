"""The two entry points: `load_pipeline` (Pipelines.Create) and `resolve_parameters` (Jobs.Start).

Loading reads the files, expands imports and each operator's own parameters, checks
everything, and keeps the placeholders that name pipeline parameters: they are filled when a
job starts. Resolution fills them (defaults, overridden by the job's variables) and checks the
result again from the same tree, so a value that makes a path or a number invalid is reported
at the line where the placeholder was written.

Neither function performs I/O, and neither raises anything but `DefinitionError`.
"""

from __future__ import annotations

from collections.abc import Mapping

from aorta.pipeline_spec.diagnostics import DEFINITION, VARIABLES, DefinitionError, Mark, Report
from aorta.pipeline_spec.fields import Reader
from aorta.pipeline_spec.imports import Importer
from aorta.pipeline_spec.model import LoadedPipeline, Pipeline
from aorta.pipeline_spec.parse import OperatorDraft, read_header, read_operator
from aorta.pipeline_spec.sources import NO_FILE, FileSet
from aorta.pipeline_spec.templates import (
    Budget,
    ExpansionTooLarge,
    placeholder_names,
    scalars,
    substitute_map,
)
from aorta.pipeline_spec.validate import check_operators
from aorta.pipeline_spec.vocabulary import PIPELINE
from aorta.pipeline_spec.yaml_nodes import Map, Seq, describe, make_seq

MAX_OPERATORS = 1000
"""Most operators one pipeline may have."""


def load_pipeline(files: Mapping[str, str], *, root: str | None = None) -> LoadedPipeline:
    """Reads and checks a definition as `Pipelines.Create` received it.

    `files` maps each path to its text; the root document is `root`, or else the first file.
    Returns the pipeline, placeholders naming pipeline parameters still in place, with the
    warnings found. Raises `DefinitionError` carrying every error found.
    """
    report = Report()
    fileset = FileSet(files, report)
    report.order_files(fileset.order)
    source = fileset.root(root) if fileset.within_limits else None
    document = fileset.document(source) if source is not None else None
    if document is None or source is None:
        raise report.failure()
    if not isinstance(document, Map):
        report.error(
            document.mark,
            "a pipeline definition is a mapping with keys such as api-version, name and "
            f"operators, not {describe(document)}",
        )
        raise report.failure()
    reader = Reader(report, templates=True)
    flat = _expanded(document, source.path, fileset, reader)
    if flat is None:
        raise report.failure()
    fileset.report_unused()
    pipeline = _build(flat, reader)
    if pipeline is None or report.has_errors:
        raise report.failure()
    _check_defaults(pipeline, report)
    return LoadedPipeline(pipeline, report.warnings())


def resolve_parameters(pipeline: Pipeline, values: Mapping[str, str]) -> Pipeline:
    """`pipeline` with every placeholder filled: `values` (the `Jobs.Start` variables) override
    the parameters' defaults.

    Raises `DefinitionError` (code JOB_VARIABLES_INVALID) when a value names no declared
    parameter, when a placeholder is left with no value, or when a filled value is invalid
    where it lands (a `cpu` that is not a whole number, a path that is not rooted, ...).
    """
    report = Report(code=VARIABLES)
    source = pipeline.source
    anchor = Mark(NO_FILE, 1, 1)
    if source is not None:
        declared_key = source.key("parameters")
        anchor = declared_key.mark if declared_key is not None else source.mark
    spelled = {name.lower(): name for name in pipeline.parameters}
    chosen: dict[str, str] = {}
    for name, value in values.items():
        lower = name.lower()
        if lower not in spelled:
            offered = ", ".join(pipeline.parameters) or "none"
            report.error(
                anchor,
                f"variable {name!r} is not a parameter of pipeline {pipeline.name!r} "
                f"(its parameters: {offered})",
            )
        elif lower in chosen:
            report.error(anchor, f"variable {name!r} is given twice (names are not case-sensitive)")
        else:
            chosen[lower] = value
    filled = {
        lower: chosen.get(lower, pipeline.parameters[name]) for lower, name in spelled.items()
    }
    known = {lower: value for lower, value in filled.items() if value is not None}
    if source is None:
        if pipeline.placeholders:
            report.error(anchor, f"pipeline {pipeline.name!r} has no definition to resolve")
        if report.has_errors:
            raise report.failure()
        return pipeline
    for scalar in scalars(source, skip="parameters"):
        for name in placeholder_names(scalar.value):
            if name.lower() in spelled and name.lower() not in known:
                report.error(
                    scalar.mark,
                    f"${{{{ {name} }}}} has no value: parameter {spelled[name.lower()]!r} has no "
                    "default, so a Jobs.Start variable must give it one",
                )
    if report.has_errors:
        raise report.failure()
    try:
        resolved = substitute_map(source, known, Budget(), skip="parameters")
    except ExpansionTooLarge as exc:
        report.error(anchor, str(exc))
        raise report.failure() from None
    built = _build(resolved, Reader(report, templates=False))
    if built is None or report.has_errors:
        raise report.failure()
    return built


def _expanded(document: Map, root_file: str, files: FileSet, reader: Reader) -> Map | None:
    """`document` with its operator imports and operator parameters expanded."""
    operators = document.get("operators")
    if not isinstance(operators, Seq):
        return document  # reported by the builder
    if not operators.items:
        reader.report.error(operators.mark, "`operators` is empty: a pipeline needs an operator")
    if len(operators.items) > MAX_OPERATORS:
        reader.report.error(
            operators.mark,
            f"the pipeline has {len(operators.items)} operators; at most {MAX_OPERATORS} are "
            "allowed",
        )
        return None
    expanded = Importer(files, reader).operators(operators.items, root_file)
    return document.replace("operators", make_seq(tuple(expanded), operators.mark))


def _build(flat: Map, reader: Reader) -> Pipeline | None:
    header = read_header(flat, reader)
    drafts: list[OperatorDraft] = []
    operators_node = reader.require(flat, "operators", "the pipeline", PIPELINE)
    listed = reader.sequence(operators_node, "`operators`") if operators_node else None
    for index, item in enumerate(listed.items if listed is not None else ()):
        mapping = reader.mapping(item, f"operator #{index + 1}")
        if mapping is not None:
            drafts.append(read_operator(mapping, index, header, reader))
    operators = check_operators(drafts, header.timeout, reader.report)
    used = _placeholders(flat, header.parameters, reader.report) if reader.templates else None
    if reader.report.has_errors or header.name is None or header.api_version is None:
        return None
    return Pipeline(
        name=header.name,
        api_version=header.api_version,
        operators=operators,
        description=header.description,
        orchestrator=header.orchestrator,
        pull_secrets=header.pull_secrets,
        parameters=header.parameters,
        timeout=header.timeout,
        placeholders=used or frozenset(),
        source=flat,
    )


def _placeholders(flat: Map, declared: Mapping[str, str | None], report: Report) -> frozenset[str]:
    """The pipeline parameters placeholders use; a placeholder naming none is reported."""
    spelled = {name.lower(): name for name in declared}
    used: set[str] = set()
    for scalar in scalars(flat, skip="parameters"):
        for name in placeholder_names(scalar.value):
            found = spelled.get(name.lower())
            if found is not None:
                used.add(found)
                continue
            offered = ", ".join(declared)
            report.error(
                scalar.mark,
                f"${{{{ {name} }}}} names no parameter: declare {name!r} under the pipeline's "
                "`parameters`" + (f" (declared: {offered})" if offered else ""),
                DEFINITION,
            )
    declared_key = flat.key("parameters")
    for name in declared:
        if name not in used and declared_key is not None:
            report.warning(declared_key.mark, f"parameter {name!r} is declared but never used")
    return frozenset(used)


def _check_defaults(pipeline: Pipeline, report: Report) -> None:
    """Warns when the defaults alone would make a job of this pipeline fail to start."""
    if not pipeline.placeholders:
        return
    if any(pipeline.parameters[name] is None for name in pipeline.placeholders):
        return
    try:
        resolve_parameters(pipeline, {})
    except DefinitionError as failed:
        for problem in failed.diagnostics:
            report.warning(
                Mark(problem.file, problem.line, problem.column),
                f"with the default parameter values: {problem.message}",
            )
