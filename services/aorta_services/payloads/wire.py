"""The Clara request messages the service's verbs receive, checked before any work is done.

Verbs that map one to one onto a Clara RPC (create, delete, details, remove, add_metadata,
remove_metadata) receive the Clara request message itself, serialized. The verbs internal to
the platform (`internal`) take and answer the contracts `aorta.contracts.PAYLOADS_*` declare.

A body that does not follow its schema is the caller's bug, refused with `Invalid`
(PAYLOAD_REQUEST_INVALID) like any bad request, never a crash; malformed ids have their own
codes (PAYLOAD_ID_INVALID, JOB_ID_INVALID).
"""

from __future__ import annotations

from typing import TypeVar

from google.protobuf.message import Message

from aorta.bus.codec import decode_request
from aorta.errors import ErrorCode

M = TypeVar("M", bound=Message)


def parse_message(body: bytes, message_class: type[M]) -> M:
    """A Clara request message; `Invalid` when the bytes are not one."""
    return decode_request(body, message_class, code=ErrorCode.PAYLOAD_REQUEST_INVALID)
