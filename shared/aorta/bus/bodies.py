"""Reading and writing the bodies of bus requests, with errors a caller can act on.

Verbs carry either a Clara protobuf message or a small JSON object; a body that is neither what
the verb expects is refused with `Invalid` carrying the owning service's request-error code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf.message import DecodeError, Message

from aorta.errors import Invalid

M = TypeVar("M", bound=Message)

Malformed = Callable[[str, str], Invalid]
"""Builds the error for (verb, problem), in the owning service's words and code."""


def parse_message(body: bytes, message_class: type[M], *, code: int) -> M:
    """The Clara message `body` holds; `Invalid` with `code` when it is not one."""
    try:
        return message_class.FromString(body)
    except DecodeError:
        raise Invalid(
            f"the request is not a valid {message_class.DESCRIPTOR.full_name} message",
            code=code,
        ) from None


def json_object(body: bytes, verb: str, malformed: Malformed) -> dict[str, Any]:
    """The JSON object `body` holds; `malformed(verb, problem)` is raised otherwise."""
    try:
        document = json.loads(body)
    except ValueError:
        raise malformed(verb, "the body is not JSON") from None
    if not isinstance(document, dict):
        raise malformed(verb, "the body is not a JSON object")
    return document


def text_field(document: dict[str, Any], key: str, verb: str, malformed: Malformed) -> str:
    """`document[key]` as a string ("" when absent); `malformed` when it is not a string."""
    value = document.get(key, "")
    if not isinstance(value, str):
        raise malformed(verb, f"{key} must be a string")
    return value


def encode_json(document: dict[str, Any]) -> bytes:
    """A compact JSON body (non-ASCII text as UTF-8, not escaped)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
