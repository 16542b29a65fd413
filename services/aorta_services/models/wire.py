"""The Clara request messages the service's verbs receive, checked before any work is done.

Verbs that map one to one onto a Clara RPC (delete, list, add_metadata, remove_metadata,
create/delete/list/read of catalogs and instances) receive the Clara request message itself,
serialized, and answer the Clara response message. The others (upload, download,
update_catalog, update_instance and the Triton pool's verbs) take and answer the contracts
`aorta.contracts.MODELS_*` declare.

A body that does not follow its schema is refused with `Invalid` (MODEL_REQUEST_INVALID).
"""

from __future__ import annotations

from typing import TypeVar

from google.protobuf.message import Message

from aorta.bus.codec import decode_request
from aorta.errors import ErrorCode

M = TypeVar("M", bound=Message)


def parse_message(body: bytes, message_class: type[M]) -> M:
    """A Clara request message; `Invalid` when the bytes are not one."""
    return decode_request(body, message_class, code=ErrorCode.MODEL_REQUEST_INVALID)
