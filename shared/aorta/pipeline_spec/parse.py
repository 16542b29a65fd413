"""From an expanded definition tree to a `Pipeline`: the pipeline keys and each operator.

The tree reaching here has its imports expanded and each operator's own template scope
applied (imports.py). This module reads what each key says; validate.py checks what spans
operators.

Decisions where Clara is silent: `name` is required for the pipeline and each operator, and a
pipeline needs at least one operator. `orchestrator` may be absent, `Clara` or `Argo` (Argo
is read with a warning: Aorta orchestrates every pipeline itself); other values are warned
about. Empty optional sections (`input:` with nothing after it) mean "none". `services` are
read with a deprecation warning. `models` are `- name: <model>` items.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from aorta.pipeline_spec.diagnostics import DEFINITION, Mark, Report
from aorta.pipeline_spec.fields import Reader
from aorta.pipeline_spec.io_spec import IoMarks, IoReader
from aorta.pipeline_spec.model import Container, Operator
from aorta.pipeline_spec.parts import (
    NEWEST_GRAMMAR,
    SUPPORTED_API_VERSIONS,
    Grammar,
    present,
    read_container,
    read_requests,
    read_timeout,
    read_variables,
    read_version,
)
from aorta.pipeline_spec.service_spec import read_services
from aorta.pipeline_spec.vocabulary import MODEL, OPERATOR, PIPELINE
from aorta.pipeline_spec.yaml_nodes import Map, Node, Scalar, shown

MODELS_FROM = (0, 6, 0)
_T = TypeVar("_T")


@dataclass(frozen=True)
class Header:
    """The pipeline-level keys."""

    api_version: str | None = None
    grammar: Grammar = NEWEST_GRAMMAR
    name: str | None = None
    description: str | None = None
    orchestrator: str | None = None
    pull_secrets: tuple[str, ...] = ()
    parameters: dict[str, str | None] = field(default_factory=dict)
    timeout: int | str | None = None


@dataclass(frozen=True)
class OperatorDraft:
    """An operator as written, with the positions later checks point at."""

    operator: Operator
    mark: Mark
    name_mark: Mark
    inputs: tuple[IoMarks, ...]
    outputs: tuple[IoMarks, ...]
    timeout_mark: Mark | None


def read_header(root: Map, reader: Reader) -> Header:
    """The pipeline-level keys of `root`; what cannot be read is reported and left empty."""
    reader.keys(root, PIPELINE, "the pipeline")
    version = None
    version_node = root.get("api-version")
    if version_node is None and not reader.misspelt(root, "api-version", PIPELINE, "the pipeline"):
        reader.report.error(
            root.mark,
            "the pipeline is missing `api-version`; use one of "
            + ", ".join(SUPPORTED_API_VERSIONS),
        )
    elif version_node is not None:
        version = read_version(version_node, "`api-version`", reader)
    name_node = reader.require(root, "name", "the pipeline", PIPELINE)
    parameters_node = present(root.get("parameters"))
    return Header(
        api_version=version[0] if version else None,
        grammar=version[1] if version else NEWEST_GRAMMAR,
        name=reader.name(name_node, "the pipeline name") if name_node is not None else None,
        description=_optional_text(root, "description", "the pipeline", reader),
        orchestrator=_orchestrator(root, reader),
        pull_secrets=_pull_secrets(root, reader),
        parameters=(
            reader.parameters(parameters_node, "`parameters` of the pipeline")
            if parameters_node is not None
            else {}
        ),
        timeout=read_timeout(root.get("timeout"), "the pipeline", reader),
    )


def read_operator(node: Map, index: int, header: Header, reader: Reader) -> OperatorDraft:
    """One operator; unreadable parts are reported and left empty."""
    numbered = f"operator #{index + 1}"
    name_node = reader.require(node, "name", numbered, OPERATOR)
    name = reader.name(name_node, f"the name of {numbered}") if name_node else None
    owner = numbered if name is None else f"operator {name!r}"
    if name is None:
        # Keep a stand-in name so references to this operator are not reported twice.
        raw = name_node.value if isinstance(name_node, Scalar) else ""
        name = raw or f"#{index + 1}"
    reader.keys(node, OPERATOR, owner)
    version_node = present(node.get("api-version"))
    version = (
        read_version(version_node, f"`api-version` of {owner}", reader) if version_node else None
    )
    grammar = version[1] if version else header.grammar
    container_node = reader.require(node, "container", owner, OPERATOR)
    io = IoReader(reader, owner, grammar)
    inputs = _listed(node, "input", io.inputs)
    outputs = _listed(node, "output", io.outputs)
    services_node = present(node.get("services"))
    services_key = node.key("services")
    if services_node is not None and services_key is not None:
        reader.report.warning(
            services_key.mark,
            f"`services` of {owner} are deprecated since Clara 0.7.1; declare `models` "
            "(api-version 0.6.0) to have Triton serve them",
        )
    timeout_node = present(node.get("timeout"))
    parameters_node = present(node.get("parameters"))
    operator = Operator(
        name=name,
        container=(
            read_container(container_node, owner, reader, OPERATOR)
            if container_node
            else Container("")
        ),
        description=_optional_text(node, "description", owner, reader),
        api_version=version[0] if version else header.api_version,
        inputs=tuple(spec for spec, _ in inputs),
        outputs=tuple(spec for spec, _ in outputs),
        requests=read_requests(node.get("requests"), owner, reader),
        models=_models(node, owner, grammar, reader),
        services=read_services(services_node, owner, reader) if services_node else (),
        variables=read_variables(node.get("variables"), owner, reader),
        timeout=read_timeout(timeout_node, owner, reader),
        # imports.py read (and reported on) these when it applied the operator's scope.
        parameters=(
            Reader(Report(), templates=True).parameters(parameters_node, owner)
            if parameters_node is not None
            else {}
        ),
    )
    return OperatorDraft(
        operator,
        node.mark,
        name_node.mark if name_node is not None else node.mark,
        tuple(marks for _, marks in inputs),
        tuple(marks for _, marks in outputs),
        timeout_node.mark if timeout_node is not None else None,
    )


def _listed(node: Map, key: str, read: Callable[[Node], list[_T]]) -> list[_T]:
    value = present(node.get(key))
    return read(value) if value is not None else []


def _optional_text(node: Map, key: str, owner: str, reader: Reader) -> str | None:
    value = present(node.get(key))
    return reader.text(value, f"`{key}` of {owner}") if value is not None else None


def _orchestrator(root: Map, reader: Reader) -> str | None:
    node = present(root.get("orchestrator"))
    value = reader.text(node, "`orchestrator`") if node is not None else None
    if node is None or value is None or value.lower() == "clara":
        return value
    if value.lower() == "argo":
        reader.report.warning(
            node.mark,
            "Argo orchestration is not available (Clara dropped it in 0.7.4); Aorta "
            "orchestrates the pipeline itself",
        )
    else:
        reader.report.warning(
            node.mark,
            f"unknown orchestrator {shown(value)}; Aorta orchestrates the pipeline itself",
        )
    return value


def _pull_secrets(root: Map, reader: Reader) -> tuple[str, ...]:
    node = present(root.get("pull-secrets"))
    if node is None:
        return ()
    secrets = reader.text_list(node, "`pull-secrets`") or ()
    for secret in secrets:
        if not secret or any(c.isspace() for c in secret):
            reader.report.error(
                node.mark, f"pull secret {shown(secret)} is not a secret name", DEFINITION
            )
    return secrets


def _models(operator: Map, owner: str, grammar: Grammar, reader: Reader) -> tuple[str, ...]:
    node = present(operator.get("models"))
    key = operator.key("models")
    if node is None or key is None:
        return ()
    if grammar < MODELS_FROM:
        reader.report.warning(key.mark, f"`models` of {owner} need api-version 0.6.0 or later")
    listed = reader.sequence(node, f"`models` of {owner}")
    names: list[str] = []
    for item in listed.items if listed is not None else ():
        what = f"a model of {owner}"
        if isinstance(item, Scalar) and not item.is_null:
            reader.report.error(
                item.mark, f"{what} is written `- name: {item.value}`, not `- {item.value}`"
            )
            continue
        entry = reader.mapping(item, what)
        if entry is None:
            continue
        reader.keys(entry, MODEL, what)
        name_node = reader.require(entry, "name", what, MODEL)
        name = reader.text(name_node, f"the name of {what}") if name_node else None
        if name is None:
            continue
        if not name or "/" in name or any(c.isspace() for c in name):
            reader.report.error(entry.mark, f"model name {shown(name)} is not valid", DEFINITION)
            continue
        if name in names:
            reader.report.warning(entry.mark, f"{owner} lists model {name!r} twice")
            continue
        names.append(name)
    return tuple(names)
