"""What a stored pipeline is, and how a definition becomes one: pure, no I/O.

A pipeline record keeps the definition files exactly as `Pipelines.Create` (or the last
`Update`) sent them, root first, so `Details` and the scheduler's snapshot return what the
client wrote; and a flat summary of the operator graph (each operator with the operators it
reads from), from which the `Details` DAG is rebuilt without parsing the YAML again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from aorta.errors import ErrorCode, Invalid
from aorta.ids import PipelineId
from aorta.pipeline_spec import DagNode, load_pipeline
from aorta.pipeline_spec.dag import Graph
from aorta.pipeline_spec.sources import normalize

MAX_DAG_DEPTH = 64
"""Levels of the `Details` DAG sent: protobuf readers (upb, C++, C#) refuse messages nested
more than 100 deep, so a longer chain of operators is cut here, with a warning at Create."""


@dataclass(frozen=True)
class DefinitionFile:
    """One definition file: its path as the client spelled it and its whole text."""

    path: str
    content: str


@dataclass(frozen=True)
class OperatorLink:
    """An operator and the operators whose outputs it reads, in document order."""

    name: str
    upstream: tuple[str, ...] = ()


@dataclass(frozen=True)
class Definition:
    """A definition that loaded: what is stored, and the warnings to show the client."""

    name: str
    files: tuple[DefinitionFile, ...]
    operators: tuple[OperatorLink, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class PipelineRecord:
    """One stored pipeline. `owner` is the subject that created it ("" when authentication
    was off, or for a record stored before owners were); `version` is the store's, for
    optimistic concurrency."""

    id: PipelineId
    name: str
    files: tuple[DefinitionFile, ...]
    operators: tuple[OperatorLink, ...]
    metadata: Mapping[str, str] = field(default_factory=dict)
    version: int = 0
    owner: str = ""

    @property
    def root(self) -> str:
        """The path of the root document: the first file sent."""
        return self.files[0].path

    @staticmethod
    def new(
        id: PipelineId, definition: Definition, metadata: Mapping[str, str], owner: str = ""
    ) -> PipelineRecord:
        return PipelineRecord(
            id, definition.name, definition.files, definition.operators, metadata, owner=owner
        )

    def with_definition(self, definition: Definition) -> PipelineRecord:
        return replace(
            self, name=definition.name, files=definition.files, operators=definition.operators
        )

    def with_metadata(self, metadata: Mapping[str, str]) -> PipelineRecord:
        return replace(self, metadata=metadata)

    def dag(self) -> tuple[DagNode, ...]:
        """The operator graph as `Pipelines.Details` describes it (root operators first)."""
        return _graph(self.operators).dag_nodes()

    def to_document(self) -> dict[str, Any]:
        """The stored form (without the store's own `version` and times).

        Metadata is kept as [key, value] pairs rather than an object: metadata keys are
        free text (dots, `$`), which not every store accepts as field names.
        """
        return {
            "id": self.id,
            "name": self.name,
            "root": self.root,
            "files": [{"path": f.path, "content": f.content} for f in self.files],
            "operators": [{"name": o.name, "upstream": list(o.upstream)} for o in self.operators],
            "metadata": [[key, value] for key, value in self.metadata.items()],
            "owner": self.owner,
        }

    @staticmethod
    def from_document(document: Mapping[str, Any]) -> PipelineRecord:
        """The record a stored document holds."""
        return PipelineRecord(
            id=PipelineId(document["id"]),
            name=document["name"],
            files=tuple(DefinitionFile(f["path"], f["content"]) for f in document["files"]),
            operators=tuple(
                OperatorLink(o["name"], tuple(o["upstream"])) for o in document["operators"]
            ),
            metadata={key: value for key, value in document["metadata"]},
            owner=str(document.get("owner", "")),
            version=int(document.get("version", 0)),
        )


def load_definition(files: Sequence[DefinitionFile]) -> Definition:
    """Loads and checks the definition made of `files` (the first is the root document).

    Raises `DefinitionError` (its code, one message per problem) when the definition is not a
    valid pipeline, and `Invalid` (PIPELINE_DEFINITION_ERROR) when no file was sent or two
    paths name the same file.
    """
    if not files:
        raise Invalid(
            "the request holds no definition file", code=ErrorCode.PIPELINE_DEFINITION_ERROR
        )
    seen: dict[str, str] = {}
    for file in files:
        key = normalize(file.path)
        if key in seen:
            raise Invalid(
                f"definition files {seen[key]!r} and {file.path!r} are the same file "
                "(paths are not case-sensitive); send its chunks under one path",
                code=ErrorCode.PIPELINE_DEFINITION_ERROR,
            )
        seen[key] = file.path
    loaded = load_pipeline({file.path: file.content for file in files}, root=files[0].path)
    pipeline = loaded.pipeline
    operators = tuple(OperatorLink(op.name, op.input_dependencies) for op in pipeline.operators)
    warnings = [str(diagnostic) for diagnostic in loaded.warnings]
    depth = dag_depth(operators)
    if depth > MAX_DAG_DEPTH:
        warnings.append(
            f"{files[0].path}: warning: the operators form a chain {depth} deep; "
            f"Pipelines.Details shows the DAG to a depth of {MAX_DAG_DEPTH} only (protobuf "
            "readers refuse deeper messages), jobs run every operator"
        )
    return Definition(pipeline.name, tuple(files), operators, tuple(warnings))


def dag_depth(operators: Sequence[OperatorLink]) -> int:
    """How many operators the longest chain of the graph holds (0 for no operators)."""
    graph = _graph(operators)
    depth: dict[str, int] = {}
    for name in reversed(graph.topological_order()):
        depth[name] = 1 + max((depth[child] for child in graph.downstream[name]), default=0)
    return max(depth.values(), default=0)


def _graph(operators: Sequence[OperatorLink]) -> Graph:
    return Graph.build([o.name for o in operators], {o.name: o.upstream for o in operators})
