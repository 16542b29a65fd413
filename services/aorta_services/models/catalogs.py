"""Catalogs and instances: named lists of model ids (Clara gives both the same messages).

Create makes an empty list with a fresh id; Update replaces the whole list (ids given twice
count once, in first-seen order; at most `MAX_LIST_MODELS`; a malformed id is MODEL_ID_INVALID
and an unknown one MODEL_NOT_FOUND, naming them, and nothing changes); Read and List stream the
models' details (see `answers` for packing), leaving out models deleted since; Delete removes
the list, never the models. Update is a contract (`aorta.contracts.MODELS_UPDATE_CATALOG`,
`MODELS_UPDATE_INSTANCE`): the gateway joins the client stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from google.protobuf.message import Message

from aorta import contracts, ids
from aorta.api import models_pb2
from aorta.bus import Request
from aorta.errors import ErrorCode, Invalid, NotFound
from aorta.ids import ModelId
from aorta.logger import get_logger
from aorta_services.models import answers, wire
from aorta_services.models.domain.model_record import ModelList
from aorta_services.models.repository import ListRepository, ModelRepository

log = get_logger(__name__)

MAX_LIST_MODELS = 10_000
"""Most model ids one catalog or instance may hold (so an update fits one bus message)."""
_SHOWN_IDS = 10

M = TypeVar("M", bound=Message)
Updated = TypeVar("Updated", bound=Message)


@dataclass(frozen=True)
class ListMessages(Generic[Updated]):
    """The Clara messages of catalogs or of instances, and the name of their id field."""

    id_field: str
    list_field: str
    parse_id: Callable[[str], str]
    create_response: type[Message]
    delete_request: type[Message]
    delete_response: type[Message]
    list_request: type[Message]
    list_response: type[Message]
    read_request: type[Message]
    read_response: type[Message]
    update_response: type[Updated]


CATALOG_MESSAGES: ListMessages[models_pb2.ModelsUpdateCatalogResponse] = ListMessages(
    id_field="catalog_id",
    list_field="catalogs",
    parse_id=ids.catalog_id,
    create_response=models_pb2.ModelsCreateCatalogResponse,
    delete_request=models_pb2.ModelsDeleteCatalogRequest,
    delete_response=models_pb2.ModelsDeleteCatalogResponse,
    list_request=models_pb2.ModelsListCatalogsRequest,
    list_response=models_pb2.ModelsListCatalogsResponse,
    read_request=models_pb2.ModelsReadCatalogRequest,
    read_response=models_pb2.ModelsReadCatalogResponse,
    update_response=models_pb2.ModelsUpdateCatalogResponse,
)
INSTANCE_MESSAGES: ListMessages[models_pb2.ModelsUpdateInstanceResponse] = ListMessages(
    id_field="instance_id",
    list_field="instances",
    parse_id=ids.instance_id,
    create_response=models_pb2.ModelsCreateInstanceResponse,
    delete_request=models_pb2.ModelsDeleteInstanceRequest,
    delete_response=models_pb2.ModelsDeleteInstanceResponse,
    list_request=models_pb2.ModelsListInstancesRequest,
    list_response=models_pb2.ModelsListInstancesResponse,
    read_request=models_pb2.ModelsReadInstanceRequest,
    read_response=models_pb2.ModelsReadInstanceResponse,
    update_response=models_pb2.ModelsUpdateInstanceResponse,
)


class ListHandlers(Generic[Updated]):
    """The five verbs of catalogs (or of instances)."""

    def __init__(
        self, lists: ListRepository, models: ModelRepository, messages: ListMessages[Updated]
    ) -> None:
        self._lists = lists
        self._models = models
        self._messages = messages
        self._what = lists.kind.what

    def _answer(self, message_class: type[M], list_id: str) -> M:
        message = message_class(header=answers.header())
        getattr(message, self._messages.id_field).value = list_id
        return message

    def _requested_id(self, request: Request, message_class: type[Message]) -> str:
        message = wire.parse_message(request.data, message_class)
        return self._messages.parse_id(getattr(message, self._messages.id_field).value)

    async def create(self, request: Request) -> bytes:
        created = await self._lists.create()
        log.info(f"{self._what}.created", id=created.id)
        return self._answer(self._messages.create_response, created.id).SerializeToString()

    async def delete(self, request: Request) -> bytes:
        list_id = self._requested_id(request, self._messages.delete_request)
        await self._lists.delete(list_id)
        log.info(f"{self._what}.deleted", id=list_id)
        return self._answer(self._messages.delete_response, list_id).SerializeToString()

    async def read(self, request: Request) -> AsyncIterator[bytes]:
        list_id = self._requested_id(request, self._messages.read_request)
        record = await self._lists.get(list_id)
        details = await self._details([record])
        for answer in answers.read_list(
            self._messages.read_response, self._messages.id_field, record.id, details[0][1]
        ):
            yield answer

    async def list_all(self, request: Request) -> AsyncIterator[bytes]:
        wire.parse_message(request.data, self._messages.list_request)
        records = await self._lists.all()
        details = await self._details(records)
        for answer in answers.list_lists(
            self._messages.list_response, self._messages.list_field, details
        ):
            yield answer

    async def update(self, command: contracts.UpdateModelList) -> Updated:
        list_id = self._messages.parse_id(command.id)
        await self._lists.get(list_id)
        model_ids = _unique([ids.model_id(value) for value in command.model_ids])
        if len(model_ids) > MAX_LIST_MODELS:
            raise Invalid(
                f"a {self._what} may hold at most {MAX_LIST_MODELS} models, not {len(model_ids)}",
                code=ErrorCode.MODEL_REQUEST_INVALID,
            )
        found = await self._models.by_ids(model_ids)
        unknown = [model_id for model_id in model_ids if model_id not in found]
        if unknown:
            shown = ", ".join(unknown[:_SHOWN_IDS])
            more = f" and {len(unknown) - _SHOWN_IDS} more" if len(unknown) > _SHOWN_IDS else ""
            raise NotFound(
                f"no model has id {shown}{more}: the {self._what} was not changed",
                code=ErrorCode.MODEL_NOT_FOUND,
            )
        await self._lists.set_models(list_id, model_ids)
        log.info(f"{self._what}.updated", id=list_id, models=len(model_ids))
        return self._answer(self._messages.update_response, list_id)

    async def _details(
        self, records: list[ModelList]
    ) -> list[tuple[str, list[models_pb2.ModelDetails]]]:
        every = {model_id for record in records for model_id in record.model_ids}
        found = await self._models.by_ids(every)
        return [(r.id, [found[m].details() for m in r.model_ids if m in found]) for r in records]


def _unique(model_ids: list[ModelId]) -> list[ModelId]:
    return list(dict.fromkeys(model_ids))
