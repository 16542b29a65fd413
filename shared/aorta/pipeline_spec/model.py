"""A loaded Clara pipeline: immutable values every service can share.

Names keep the spelling the definition gave them; `from` and `name` references are rewritten
to the spelling of what they reference, so consumers compare names exactly. Mapping fields
take no part in hashing (equality still compares them), so these values can key a dict. Fields typed
`int | str` hold a `str` only while a `${{ parameter }}` placeholder is unresolved:
`resolve_parameters` returns a pipeline where every one is an `int` (see `Pipeline.placeholders`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from aorta.errors import ErrorCode, NotFound
from aorta.pipeline_spec.dag import DagNode, Graph, JobDagNode
from aorta.pipeline_spec.diagnostics import Diagnostic
from aorta.pipeline_spec.yaml_nodes import Map

DEFAULT_TIMEOUT = 600
"""Seconds a job (and each operator) may run when the definition names no `timeout`."""
MAX_TIMEOUT = 1800
"""The largest `timeout` a definition may give, in seconds."""
DEFAULT_CPU = 2
DEFAULT_GPU = 0
DEFAULT_MEMORY_MB = 1024


@dataclass(frozen=True)
class Container:
    """The image an operator or service runs.

    `tag` is "" when `image` pins a digest (`name@sha256:...`); `command` becomes the
    entrypoint when the image has none, its arguments otherwise.
    """

    image: str
    tag: str = "latest"
    command: tuple[str, ...] = ()

    @property
    def reference(self) -> str:
        """`image:tag`, or the image alone when it pins a digest."""
        return f"{self.image}:{self.tag}" if self.tag else self.image


@dataclass(frozen=True)
class Requests:
    """Minimum resources: CPU cores (shareable), GPUs (exclusive), memory in MB (a hard cap)."""

    cpu: int | str = DEFAULT_CPU
    gpu: int | str = DEFAULT_GPU
    memory: int | str = DEFAULT_MEMORY_MB


@dataclass(frozen=True)
class InputSpec:
    """One input. Without `from_operator` it reads the job's payload (its `input/` folder).

    `output_name` is the upstream output read, None when that output is unnamed. `type`,
    `element_type` and `shape` are set in typed pipelines; `type` and array element types use
    the long primitive spellings (`uint8`, `float32`, ...), `shape` uses -1 for dynamic sizes.
    """

    path: str | None = None
    from_operator: str | None = None
    output_name: str | None = None
    type: str | None = None
    element_type: str | None = None
    shape: tuple[int, ...] | None = None


@dataclass(frozen=True)
class OutputSpec:
    """One output; `name` is None only for an operator's single unnamed output."""

    name: str | None = None
    path: str | None = None
    type: str | None = None
    element_type: str | None = None
    shape: tuple[int, ...] | None = None


@dataclass(frozen=True)
class HttpConnection:
    """A service address handed to operators as the environment variable `name` (`ip:port`)."""

    name: str
    port: int | str | None = None


@dataclass(frozen=True)
class VolumeConnection:
    """A shared folder `path` handed to operators as the environment variable `name`."""

    name: str
    path: str


@dataclass(frozen=True)
class Connections:
    """How operators reach a service."""

    http: tuple[HttpConnection, ...] = ()
    volume: tuple[VolumeConnection, ...] = ()


@dataclass(frozen=True)
class ServiceSpec:
    """A long-lived helper container an operator uses (deprecated since Clara 0.7.1)."""

    name: str
    container: Container
    requests: Requests = Requests()
    variables: Mapping[str, str] = field(default_factory=dict, hash=False)
    connections: Connections = Connections()


@dataclass(frozen=True)
class Operator:
    """One DAG node: a container with its inputs, outputs and needs.

    `api_version` is the operator's own or, when it gives none, the pipeline's. `timeout` is
    None when the operator inherits the pipeline's (see `Pipeline.stage_timeout`).
    `parameters` are the operator's own template defaults (None: no default).
    """

    name: str
    container: Container
    description: str | None = None
    api_version: str | None = None
    inputs: tuple[InputSpec, ...] = ()
    outputs: tuple[OutputSpec, ...] = ()
    requests: Requests = Requests()
    models: tuple[str, ...] = ()
    services: tuple[ServiceSpec, ...] = ()
    variables: Mapping[str, str] = field(default_factory=dict, hash=False)
    timeout: int | str | None = None
    parameters: Mapping[str, str | None] = field(default_factory=dict, hash=False)

    @property
    def input_dependencies(self) -> tuple[str, ...]:
        """Operators whose outputs this one reads, each once, in the order of its inputs."""
        names = (spec.from_operator for spec in self.inputs if spec.from_operator is not None)
        return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class Pipeline:
    """A validated pipeline: its operators in document order and the DAG they form.

    `parameters` are the declared template parameters and their defaults (None: no default,
    a `Jobs.Start` variable must supply it); `placeholders` the parameters still used by
    unresolved placeholders (empty once resolved). `timeout` is None for the default.
    `source` is the expanded definition tree `resolve_parameters` works from; it is not part of
    the pipeline's value (equality ignores it) and is None for pipelines built in code.
    """

    name: str
    api_version: str
    operators: tuple[Operator, ...]
    description: str | None = None
    orchestrator: str | None = None
    pull_secrets: tuple[str, ...] = ()
    parameters: Mapping[str, str | None] = field(default_factory=dict, hash=False)
    timeout: int | str | None = None
    placeholders: frozenset[str] = frozenset()
    source: Map | None = field(default=None, compare=False, repr=False)

    @cached_property
    def _graph(self) -> Graph:
        upstream = {op.name: op.input_dependencies for op in self.operators}
        return Graph.build([op.name for op in self.operators], upstream)

    @cached_property
    def _by_name(self) -> dict[str, Operator]:
        return {op.name.lower(): op for op in self.operators}

    def operator(self, name: str) -> Operator:
        """The operator called `name` (any case); `NotFound` (JOB_OPERATOR_NOT_FOUND) if none."""
        found = self._by_name.get(name.lower())
        if found is None:
            raise NotFound(
                f"pipeline {self.name!r} has no operator {name!r}",
                code=ErrorCode.JOB_OPERATOR_NOT_FOUND,
            )
        return found

    def topological_order(self) -> tuple[str, ...]:
        """Every operator after those it reads from; ties broken by document order."""
        return self._graph.topological_order()

    def upstream(self, name: str) -> frozenset[str]:
        """The operators `name` reads from directly."""
        return frozenset(self._graph.upstream[self.operator(name).name])

    def downstream(self, name: str) -> frozenset[str]:
        """The operators that read from `name` directly."""
        return frozenset(self._graph.downstream[self.operator(name).name])

    def roots(self) -> tuple[str, ...]:
        """Operators that read only the payload (or nothing), in document order."""
        return self._graph.roots()

    def dag_nodes(self) -> tuple[DagNode, ...]:
        """The DAG as `Pipelines.Details` returns it (see `DagNode`)."""
        return self._graph.dag_nodes()

    def job_dag(self) -> tuple[JobDagNode, ...]:
        """Each operator with the operators it waits for, as `Jobs.Status` returns it."""
        return self._graph.job_dag()

    @property
    def job_timeout(self) -> int | str:
        """Seconds the whole job may run (a `str` only while a placeholder is unresolved)."""
        return DEFAULT_TIMEOUT if self.timeout is None else self.timeout

    def stage_timeout(self, name: str) -> int | str:
        """Seconds operator `name` may run: its own timeout, else the pipeline's, else 600."""
        own = self.operator(name).timeout
        return self.job_timeout if own is None else own


@dataclass(frozen=True)
class LoadedPipeline:
    """What `load_pipeline` returns: the pipeline and the warnings about its definition."""

    pipeline: Pipeline
    warnings: tuple[Diagnostic, ...] = ()
