"""The Clara request messages the service's verbs receive, checked before any work is done.

Verbs that map one to one onto a Clara RPC (details, list, remove, add_metadata,
remove_metadata) receive the Clara request message itself, serialized. `Create` and `Update`
are client streams that the gateway reassembles first, and `snapshot` is internal to the
platform: their requests and answers are contracts (`aorta.contracts.PIPELINES_CREATE`,
`PIPELINES_UPDATE`, `PIPELINES_SNAPSHOT`).

A body that does not follow its schema is the gateway's bug, not the client's, but it is
refused with `Invalid` (PIPELINE_DEFINITION_ERROR) like any bad request, never a crash.
"""

from __future__ import annotations

from typing import TypeVar

from google.protobuf.message import Message

from aorta.bus.codec import decode_request
from aorta.errors import ErrorCode

M = TypeVar("M", bound=Message)


def parse_message(body: bytes, message_class: type[M]) -> M:
    """A Clara request message; `Invalid` when the bytes are not one."""
    return decode_request(body, message_class, code=ErrorCode.PIPELINE_DEFINITION_ERROR)
