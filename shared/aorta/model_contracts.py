"""The requests and answers of the models service's internal verbs (`aorta_services.models`).

Part of `aorta.contracts`, which declares the verbs and re-exports these types; the rules
there (frozen dataclasses, checks in `__post_init__`, canonical ids) hold here alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aorta import ids
from aorta.api import models_pb2
from aorta.ids import JobId


@dataclass(frozen=True)
class UploadModel:
    """The archive the gateway streamed into the blob store under `staging_key` (its size and
    sha256 hex), with the details of the upload's first message (`type` is `ModelType`)."""

    staging_key: str
    size: int
    sha256: str
    name: str = ""
    type: int = 0
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelLocation:
    """Where a model's archive lies, for the gateway to stream: its blob key and size."""

    details: models_pb2.ModelDetails
    archive_key: str
    size: int


@dataclass(frozen=True)
class UpdateModelList:
    """UpdateCatalog or UpdateInstance, its stream joined by the gateway: the list's id and
    the model ids, all as the client spelled them."""

    id: str
    model_ids: tuple[str, ...]


@dataclass(frozen=True)
class AcquireTriton:
    """A Triton server holding every named model, for this job only; `gpus` are the node's
    devices the scheduler reserved for the job, which its server should run on."""

    job_id: JobId
    models: tuple[str, ...]
    gpus: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "job_id", ids.job_id(self.job_id))


@dataclass(frozen=True)
class TritonServer:
    """The acquired server's endpoints, `host:port`."""

    grpc_uri: str
    http_uri: str


@dataclass(frozen=True)
class ReleaseTriton:
    """The job stopped: its servers return to the pool."""

    job_id: JobId

    def __post_init__(self) -> None:
        object.__setattr__(self, "job_id", ids.job_id(self.job_id))
