"""The Clara Pipeline Definition Language: parse, validate, templates and the DAG.

Pure: it receives file contents as text and performs no I/O. `load_pipeline` is what
`Pipelines.Create` needs; `resolve_parameters` what `Jobs.Start` needs; `Pipeline` answers the
DAG questions of `Pipelines.Details`, `Jobs.Status` and the scheduler.
"""

from aorta.pipeline_spec.dag import DagNode, JobDagNode
from aorta.pipeline_spec.diagnostics import MAX_DIAGNOSTICS, DefinitionError, Diagnostic, Mark
from aorta.pipeline_spec.load import MAX_OPERATORS, load_pipeline, resolve_parameters
from aorta.pipeline_spec.model import (
    DEFAULT_CPU,
    DEFAULT_GPU,
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT,
    MAX_TIMEOUT,
    Connections,
    Container,
    HttpConnection,
    InputSpec,
    LoadedPipeline,
    Operator,
    OutputSpec,
    Pipeline,
    Requests,
    ServiceSpec,
    VolumeConnection,
)
from aorta.pipeline_spec.parts import SUPPORTED_API_VERSIONS
from aorta.pipeline_spec.sources import MAX_DEFINITION_BYTES
from aorta.pipeline_spec.validate import MAX_DAG_NODES
from aorta.pipeline_spec.yaml_nodes import MAX_ALIASES, MAX_DEPTH, MAX_EXPANDED_CHARS, MAX_VALUES

__all__ = [
    "DEFAULT_CPU",
    "DEFAULT_GPU",
    "DEFAULT_MEMORY_MB",
    "DEFAULT_TIMEOUT",
    "MAX_ALIASES",
    "MAX_DAG_NODES",
    "MAX_DEFINITION_BYTES",
    "MAX_DEPTH",
    "MAX_DIAGNOSTICS",
    "MAX_EXPANDED_CHARS",
    "MAX_OPERATORS",
    "MAX_TIMEOUT",
    "MAX_VALUES",
    "SUPPORTED_API_VERSIONS",
    "Connections",
    "Container",
    "DagNode",
    "DefinitionError",
    "Diagnostic",
    "HttpConnection",
    "InputSpec",
    "JobDagNode",
    "LoadedPipeline",
    "Mark",
    "Operator",
    "OutputSpec",
    "Pipeline",
    "Requests",
    "ServiceSpec",
    "VolumeConnection",
    "load_pipeline",
    "resolve_parameters",
]
