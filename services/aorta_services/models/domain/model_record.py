"""What a stored model, catalog and instance are: pure, no I/O.

A model record points at the archive exactly as uploaded (`archive_key`, under
`models/<model id>/<revision>/model.zip` in the blob store): the archive is the source of truth,
returned byte for byte by `DownloadModel` and expanded on demand into a Triton model repository.
Uploading a model under an existing name replaces that model in place: it keeps its id, gets a
new `revision` (and archive key), and takes the new upload's type and metadata.

Catalogs and instances are the same thing to Clara's API: a list of model ids, replaced whole
by `Update*`. Ids of models deleted since are left out when a catalog is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aorta.api import common_pb2, models_pb2
from aorta.ids import ModelId

MODELS_PREFIX = "models/"
STAGING_PREFIX = "staging/models/"
"""Where the gateway streams an upload before the service checks it."""


def archive_key(model_id: str, revision: str) -> str:
    """The blob key of one revision's archive."""
    return f"{MODELS_PREFIX}{model_id}/{revision}/model.zip"


def model_prefix(model_id: str) -> str:
    """The blob prefix holding every revision of one model."""
    return f"{MODELS_PREFIX}{model_id}/"


LISTED_FIELDS = ("name", "type", "metadata")
"""What ListModels reads of a model document besides its id."""


def listed_details(document: Mapping[str, Any]) -> models_pb2.ModelDetails:
    """The Clara view of a model document holding `LISTED_FIELDS`, as `ModelRecord.details`."""
    return models_pb2.ModelDetails(
        model_id=common_pb2.Identifier(value=document["id"]),
        name=document["name"],
        type=models_pb2.ModelType.ValueType(int(document["type"])),
        metadata=dict(document.get("metadata") or {}),
    )


@dataclass(frozen=True)
class ModelRecord:
    """One stored model. `version` is the store's, for optimistic concurrency (0: not stored)."""

    id: ModelId
    name: str
    type: int
    revision: str
    archive_key: str
    archive_size: int
    archive_sha256: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    backend: str = ""
    version: int = 0

    def details(self) -> models_pb2.ModelDetails:
        """The Clara view of the model."""
        return listed_details(self.to_document())

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "revision": self.revision,
            "archive_key": self.archive_key,
            "archive_size": self.archive_size,
            "archive_sha256": self.archive_sha256,
            "metadata": dict(self.metadata),
            "backend": self.backend,
        }

    @staticmethod
    def from_document(document: Mapping[str, Any]) -> ModelRecord:
        return ModelRecord(
            id=ModelId(document["id"]),
            name=document["name"],
            type=int(document["type"]),
            revision=document["revision"],
            archive_key=document["archive_key"],
            archive_size=int(document["archive_size"]),
            archive_sha256=document["archive_sha256"],
            metadata=dict(document.get("metadata") or {}),
            backend=document.get("backend", ""),
            version=int(document.get("version", 0)),
        )


@dataclass(frozen=True)
class ModelList:
    """A catalog or an instance: its id and its model ids, in the order last set."""

    id: str
    model_ids: tuple[str, ...] = ()
    version: int = 0

    @staticmethod
    def from_document(document: Mapping[str, Any]) -> ModelList:
        return ModelList(
            id=document["id"],
            model_ids=tuple(document.get("model_ids") or ()),
            version=int(document.get("version", 0)),
        )
