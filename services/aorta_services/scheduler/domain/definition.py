"""A job's frozen pipeline definition, and what the scheduler derives from it: pure.

A job keeps the definition files its pipeline had when the job was created (`Jobs.Create`), so
updating or removing the pipeline later never changes a job. The files are loaded again
whenever the scheduler needs the pipeline (at Start, with the job's variables; on a leader,
when it runs the job), which keeps the job document small.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from aorta.pipeline_spec import (
    DEFAULT_CPU,
    DEFAULT_GPU,
    DEFAULT_MEMORY_MB,
    Operator,
    Pipeline,
    Requests,
    load_pipeline,
    resolve_parameters,
)
from aorta_services.scheduler.domain import JobProgress, Request
from aorta_services.scheduler.domain.job_record import OperatorRecord

CACHED_DEFINITIONS = 16
"""Loaded pipelines kept (see `_loaded`). Definitions are a few KB as a rule and at most one bus
message (1 MiB) each, so the cache stays small even in the worst case."""


@dataclass(frozen=True)
class Definition:
    """The definition files of one job, as the pipeline had them: (path, content), root first."""

    root: str
    files: tuple[tuple[str, str], ...]

    def pipeline(self) -> Pipeline:
        """The pipeline, placeholders still in place."""
        return _loaded(self)

    def resolved(self, variables: Mapping[str, str]) -> Pipeline:
        """The pipeline with `variables` (the `Jobs.Start` ones) filling its parameters.

        Raises `DefinitionError` (JOB_VARIABLES_INVALID) for a variable naming no parameter,
        a placeholder left without a value, or a value invalid where it lands.
        """
        return _resolved(self, tuple(variables.items()))


# Jobs of one pipeline share their definition, and each job needs its pipeline at Create, at
# Start and on admission: parsing once per definition (and set of variables) instead of each
# time takes YAML off the hot path. Pipelines are immutable, so sharing them is safe.
@lru_cache(maxsize=CACHED_DEFINITIONS)
def _loaded(definition: Definition) -> Pipeline:
    return load_pipeline(dict(definition.files), root=definition.root).pipeline


@lru_cache(maxsize=CACHED_DEFINITIONS)
def _resolved(definition: Definition, variables: tuple[tuple[str, str], ...]) -> Pipeline:
    return resolve_parameters(_loaded(definition), dict(variables))


def progress_of(pipeline: Pipeline) -> JobProgress:
    """A job of `pipeline` that has not started: every operator PENDING."""
    order = pipeline.topological_order()
    return JobProgress(order, {name: pipeline.upstream(name) for name in order})


def operator_records(
    pipeline: Pipeline, *, default_timeout: int, max_timeout: int
) -> tuple[OperatorRecord, ...]:
    """One fresh record per operator, in topological order, with what each asks for and how
    long each run may take (see `stage_timeout`).

    A value still held by a placeholder (before Start resolves it) counts as the default
    until then.
    """
    return tuple(
        OperatorRecord(
            name=name,
            request=provisional_request(pipeline.operator(name)),
            timeout=stage_timeout(pipeline, name, default=default_timeout, maximum=max_timeout),
        )
        for name in pipeline.topological_order()
    )


def stage_timeout(pipeline: Pipeline, operator: str, *, default: int, maximum: int) -> int:
    """Seconds each run of `operator` may take: its own timeout, else the pipeline's, else
    `default`; never above `maximum`. A placeholder not yet resolved counts as `default`."""
    own = pipeline.operator(operator).timeout
    chosen = own if own is not None else pipeline.timeout
    seconds = chosen if isinstance(chosen, int) else default
    return min(seconds, maximum)


def job_timeout(pipeline: Pipeline, *, default: int, maximum: int) -> int:
    """Seconds the whole job may run once admitted: the pipeline's, else `default`, capped."""
    chosen = pipeline.timeout if isinstance(pipeline.timeout, int) else default
    return min(chosen, maximum)


def provisional_request(operator: Operator) -> Request:
    """`operator`'s request, each value a placeholder still holds replaced by the default."""
    return request_of(operator.requests)


def request_of(requests: Requests) -> Request:
    """What `requests` (an operator's or a service's) asks for, each value a placeholder
    still holds replaced by the default."""
    return Request(
        cpu=requests.cpu if isinstance(requests.cpu, int) else DEFAULT_CPU,
        gpu=requests.gpu if isinstance(requests.gpu, int) else DEFAULT_GPU,
        memory_mb=requests.memory if isinstance(requests.memory, int) else DEFAULT_MEMORY_MB,
    )


def models_of(pipeline: Pipeline) -> tuple[str, ...]:
    """Every model the job's operators list, each once, in first-listed order."""
    return tuple(dict.fromkeys(model for op in pipeline.operators for model in op.models))
