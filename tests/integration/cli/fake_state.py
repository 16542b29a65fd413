"""The fake platform's state: what it stores, what it recorded, and the knobs tests turn."""

from __future__ import annotations

import posixpath
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml

from aorta.api import clara_pb2, common_pb2, jobs_pb2
from aorta.timestamps import utcnow

OP = jobs_pb2.JobOperatorStatus


def failed(response_class: type[Any], code: int, *messages: str) -> Any:
    """A response carrying a negative header code, as Clara reports every failure."""
    response = response_class()
    response.header.code = code
    response.header.messages.extend(messages)
    return response


def ident(value: str) -> common_pb2.Identifier:
    return common_pb2.Identifier(value=value)


@dataclass
class Pipeline:
    pipeline_id: str
    name: str
    files: dict[str, str]
    upstream: dict[str, list[str]]  # operator -> upstream operators, in definition order


@dataclass
class Payload:
    payload_id: str
    kind: int
    job_id: str = ""
    files: dict[str, bytes] = field(default_factory=dict)  # rooted names: /input/a.txt
    read_only: bool = False
    # What an upload recorded, by rooted name; files an operator wrote have none (as on the
    # platform), and a test may change a file's bytes behind its checksum's back.
    sha256: dict[str, str] = field(default_factory=dict)


@dataclass
class Operator:
    status: int = OP.Value("JOB_OPERATOR_STATUS_PENDING")
    started: datetime | None = None
    stopped: datetime | None = None
    logs: list[str] = field(default_factory=list)


@dataclass
class Job:
    job_id: str
    name: str
    pipeline: Pipeline
    payload_id: str
    priority: int
    operators: dict[str, Operator]
    state: int = jobs_pb2.JOB_STATE_PENDING
    status: int = jobs_pb2.JOB_STATUS_HEALTHY
    created: datetime = field(default_factory=utcnow)
    started: datetime | None = None
    stopped: datetime | None = None
    queued: bool = False
    variables: list[tuple[str, str]] = field(default_factory=list)
    current: int = -1
    progress: int = 0


@dataclass
class Model:
    model_id: str
    name: str
    kind: int
    metadata: dict[str, str]
    archive: bytes
    members: dict[str, bytes]


def operators_of(files: dict[str, str], root: str) -> dict[str, list[str]]:
    """Operator name -> upstream names, imports resolved against the files sent."""
    upstream: dict[str, list[str]] = {}
    for item in (yaml.safe_load(files[root]) or {}).get("operators") or []:
        if "import" in item:
            spec = item["import"]
            path = spec if isinstance(spec, str) else spec["path"]
            joined = posixpath.normpath(posixpath.join(posixpath.dirname(root), path))
            beside = {k: v for k, v in item.items() if k != "import"}
            item = {**yaml.safe_load(files[joined]), **beside}
        upstream[item["name"]] = [i["from"] for i in item.get("input") or [] if "from" in i]
    return upstream


class State:
    """Everything the fake services share; every field is safe to read from a test."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.pipelines: dict[str, Pipeline] = {}
        self.pipeline_messages: list[tuple[str, int]] = []  # (path, content length) per message
        self.jobs: dict[str, Job] = {}
        self.payloads: dict[str, Payload] = {}
        self.upload_messages: list[tuple[str, int]] = []  # (details.name, data length)
        self.models: dict[str, Model] = {}
        self.faults: set[str] = set()  # operators that fault when they finish
        self.steps_per_operator = 1  # Status polls an operator stays RUNNING
        self.upload_delay = 0.0  # seconds the server waits per upload message
        self.gpus: list[clara_pb2.ClaraUtilizationResponse.GpuUtilization] = []
