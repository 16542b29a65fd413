"""Models RPCs at the gateway.

Model bytes never cross the bus: `UploadModel` streams the archive straight into the blob store
under a staging key (`staging/models/<random>.zip`, memory bounded by the store's block size),
then asks the models service to check and keep it; `DownloadModel` asks the service where the
archive is and streams it from the blob store. The other RPCs forward the Clara messages as
they are, except the client streams `UpdateCatalog`/`UpdateInstance`, which are reassembled
into one request (`aorta.contracts.UpdateModelList`).

- Upload: the details (name, type, metadata) are read from the first message that has them;
  data from every message, in order. An archive above `MAX_ARCHIVE_BYTES` is refused as soon
  as it passes the limit, and nothing is kept. The service gets time in proportion to the
  archive's size to check it (`AORTA_RPC_TIMEOUT` plus a second per `CHECK_BYTES_PER_SECOND`).
- Download: the first message carries the details, each further one a chunk of the archive
  (at most `DOWNLOAD_CHUNK_BYTES`); every message carries the header.
- Update: the id is the first non-empty one sent; model ids of every message are joined.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aorta import contracts, subjects
from aorta.api import common_pb2, models_pb2
from aorta.bus.verbs import Verb
from aorta.errors import ErrorCode, Invalid, NotFound, Unavailable
from aorta.ids import new_id
from aorta_services.gateway import encoded
from aorta_services.gateway.forward import GatewayContext
from aorta_services.gateway.rpc import Context, Encoded, Handler

STAGING_PREFIX = "staging/models/"
MAX_ARCHIVE_BYTES = 64 * 1024**3
"""Most bytes one uploaded archive may hold."""
MAX_UPDATE_IDS = 10_000
"""Most model ids one UpdateCatalog/UpdateInstance stream may send."""
CHECK_BYTES_PER_SECOND = 25 * 1024**2
DOWNLOAD_CHUNK_BYTES = 1024 * 1024
_DOWNLOAD_DATA_TAG = encoded.bytes_field_tag(models_pb2.ModelsDownloadModelResponse, "data")


_CATALOG_VERBS = (
    (subjects.MODELS_CREATE_CATALOG, models_pb2.ModelsCreateCatalogResponse),
    (subjects.MODELS_DELETE_CATALOG, models_pb2.ModelsDeleteCatalogResponse),
    (subjects.MODELS_LIST_CATALOGS, models_pb2.ModelsListCatalogsResponse),
    (subjects.MODELS_READ_CATALOG, models_pb2.ModelsReadCatalogResponse),
)
"""Create, Delete, List and Read of catalogs, forwarded: each one's subject and answer."""
_INSTANCE_VERBS = (
    (subjects.MODELS_CREATE_INSTANCE, models_pb2.ModelsCreateInstanceResponse),
    (subjects.MODELS_DELETE_INSTANCE, models_pb2.ModelsDeleteInstanceResponse),
    (subjects.MODELS_LIST_INSTANCES, models_pb2.ModelsListInstancesResponse),
    (subjects.MODELS_READ_INSTANCE, models_pb2.ModelsReadInstanceResponse),
)
"""The same for instances (Clara gives both the same messages)."""


def _invalid(message: str) -> Invalid:
    return Invalid(message, code=ErrorCode.MODEL_REQUEST_INVALID)


def handlers(gateway: GatewayContext) -> dict[str, Handler]:
    """Every Models RPC."""
    forward = gateway.forward
    timeout = gateway.settings.rpc_timeout

    async def discard(key: str) -> None:
        try:
            await gateway.blobs.delete(key)
        except NotFound:
            return

    async def upload(
        requests: AsyncIterator[models_pb2.ModelsUploadModelRequest], context: Context
    ) -> models_pb2.ModelsUploadModelResponse:
        stream = _UploadStream(requests)
        key = f"{STAGING_PREFIX}{new_id()}.zip"
        info = await gateway.blobs.put(key, stream.chunks())
        details = stream.details
        command = contracts.UploadModel(
            staging_key=key,
            size=info.size,
            sha256=info.sha256 or "",
            name=details.name,
            type=int(details.type),
            metadata=dict(details.metadata),
        )
        wait = timeout + info.size / CHECK_BYTES_PER_SECOND
        try:
            return await forward.call(contracts.MODELS_UPLOAD, command, timeout=wait)
        except Unavailable:
            # Nobody took the archive over (or it is late): do not leave it behind.
            await discard(key)
            raise

    async def download(
        request: models_pb2.ModelsDownloadModelRequest, context: Context
    ) -> AsyncIterator[models_pb2.ModelsDownloadModelResponse | Encoded]:
        location = await forward.call(contracts.MODELS_DOWNLOAD, request)
        header = common_pb2.ResponseHeader(code=0)
        yield models_pb2.ModelsDownloadModelResponse(header=header, details=location.details)
        prefix = models_pb2.ModelsDownloadModelResponse(header=header).SerializeToString()
        async for chunk in gateway.blobs.get(location.archive_key, chunk_size=DOWNLOAD_CHUNK_BYTES):
            yield encoded.with_bytes(prefix, _DOWNLOAD_DATA_TAG, chunk)

    def update(verb: Verb[contracts.UpdateModelList, Any], id_field: str) -> Handler:
        async def handler(requests: AsyncIterator[Any], context: Context) -> Any:
            list_id = ""
            model_ids: list[str] = []
            async for request in requests:
                list_id = list_id or getattr(request, id_field).value
                model_ids += [identifier.value for identifier in request.model_ids]
                if len(model_ids) > MAX_UPDATE_IDS:
                    raise _invalid(f"an update may name at most {MAX_UPDATE_IDS} models")
            return await forward.call(verb, contracts.UpdateModelList(list_id, tuple(model_ids)))

        return handler

    def lists(
        kind: str,
        verbs: tuple[tuple[str, Any], ...],
        updating: Verb[contracts.UpdateModelList, Any],
    ) -> dict[str, Handler]:
        create, delete, listing, read = verbs
        title = kind.capitalize()
        return {
            f"Create{title}": forward.unary(*create),
            f"Delete{title}": forward.unary(*delete),
            f"List{title}s": forward.server_stream(*listing, reads=True),
            f"Read{title}": forward.server_stream(*read, reads=True),
            f"Update{title}": update(updating, f"{kind}_id"),
        }

    return {
        "UploadModel": upload,
        "DownloadModel": download,
        "ListModels": forward.passed_on(subjects.MODELS_LIST, reads=True),
        "DeleteModel": forward.unary(subjects.MODELS_DELETE, models_pb2.ModelsDeleteModelResponse),
        "AddMetadata": forward.unary(
            subjects.MODELS_ADD_METADATA, models_pb2.ModelsAddMetadataResponse
        ),
        "RemoveMetadata": forward.unary(
            subjects.MODELS_REMOVE_METADATA, models_pb2.ModelsRemoveMetadataResponse
        ),
        **lists("catalog", _CATALOG_VERBS, contracts.MODELS_UPDATE_CATALOG),
        **lists("instance", _INSTANCE_VERBS, contracts.MODELS_UPDATE_INSTANCE),
    }


class _UploadStream:
    """An UploadModel stream split into the details (the first message that has them) and the
    archive's bytes (every message's `data`, refused past `MAX_ARCHIVE_BYTES`)."""

    def __init__(self, requests: AsyncIterator[models_pb2.ModelsUploadModelRequest]) -> None:
        self._requests = requests
        self._has_details = False
        self.details = models_pb2.ModelDetails()
        self.size = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        async for request in self._requests:
            if not self._has_details and request.HasField("details"):
                self.details.CopyFrom(request.details)
                self._has_details = True
            if request.data:
                self.size += len(request.data)
                if self.size > MAX_ARCHIVE_BYTES:
                    raise _invalid(f"the model archive is larger than {MAX_ARCHIVE_BYTES} bytes")
                yield request.data
