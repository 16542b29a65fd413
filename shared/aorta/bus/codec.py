"""The one codec of bus bodies: Clara protobuf messages serialized, frozen dataclasses as JSON.

JSON is compact UTF-8 (non-ASCII text unescaped), with the dataclass's field names; a Clara
message inside a dataclass is the base64 of its bytes, and any mapping a JSON object. Decoding
checks every field's JSON type (msgspec) and runs the dataclass's `__post_init__`, whose
`ValueError` counts as a malformed body like a wrong type; any other error it raises (an id's
own `Invalid`) goes on unchanged.
The verbs that use it are declared in `aorta.contracts`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec
from google.protobuf.message import DecodeError, Message

from aorta.errors import Invalid

T = TypeVar("T")


class Malformed(ValueError):
    """A body that is not the type it should hold; the text says what is wrong."""


def encode(value: object) -> bytes:
    """The body carrying `value`: a Clara message serialized, a dataclass as JSON."""
    if isinstance(value, Message):
        return value.SerializeToString()
    return _JSON.encode(value)


def decode(body: bytes, kind: type[T], *, role: str = "request") -> T:
    """The `kind` that `body` holds, or `Malformed` saying what is wrong; `role` ("request" or
    "answer") names the body in that text."""
    if issubclass(kind, Message):
        try:
            return kind.FromString(body)
        except DecodeError:
            raise Malformed(
                f"the {role} is not a valid {kind.DESCRIPTOR.full_name} message"
            ) from None
    try:
        return msgspec.json.decode(body, type=kind, dec_hook=_decode_message)
    except msgspec.ValidationError as error:
        raise Malformed(_problem(str(error), role)) from None
    except msgspec.DecodeError:
        raise Malformed(f"the {role} is not JSON") from None


def decode_request(body: bytes, kind: type[T], *, code: int) -> T:
    """The request `body` holds, as `kind`; `Invalid` with `code` (the serving service's
    request-error code) saying what is wrong when it holds none."""
    try:
        return decode(body, kind)
    except Malformed as problem:
        raise Invalid(str(problem), code=code) from None


def _encode_other(value: object) -> object:
    if isinstance(value, Message):
        return base64.b64encode(value.SerializeToString()).decode()
    if isinstance(value, Mapping):
        # msgspec encodes dicts only; a `Mapping` field may hold any mapping.
        return dict(value)
    # msgspec's hooks say "not a type I handle" with NotImplementedError (its documented protocol).
    raise NotImplementedError(f"a {type(value).__name__} cannot be encoded")


def _decode_message(kind: type[Any], value: object) -> Message:
    if not (isinstance(kind, type) and issubclass(kind, Message)):
        # As above: msgspec's protocol for a type this hook does not handle.
        raise NotImplementedError(f"a {kind!r} cannot be decoded")
    if not isinstance(value, str):
        raise TypeError(f"a {kind.DESCRIPTOR.full_name} must be base64 text")
    try:
        return kind.FromString(base64.b64decode(value, validate=True))
    except (ValueError, DecodeError):
        raise ValueError(f"not the base64 of a {kind.DESCRIPTOR.full_name} message") from None


_JSON = msgspec.json.Encoder(enc_hook=_encode_other)

_AT = re.compile(r"(?P<what>.*?)(?: - at `\$\.?(?P<path>[^`]*)`)?", re.DOTALL)
_EXPECTED = re.compile(r"Expected `(?P<want>[^`]+)`, got `(?P<got>[^`]+)`")
_MISSING = re.compile(r"Object missing required field `(?P<field>[^`]+)`")
_JSON_TYPES = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "null": "null",
    "array": "a list",
    "object": "an object",
}


def _problem(error: str, role: str) -> str:
    """msgspec's account of a body that does not fit its type, in plain words: `files must be a
    list, not a string`, `files[0].path is missing` (the top level is the `role`)."""
    found = _AT.fullmatch(error)
    what, path = (found["what"], found["path"]) if found else (error, None)
    if expected := _EXPECTED.fullmatch(what):
        want, got = _json_type(expected["want"]), _json_type(expected["got"])
        return f"{path or f'the {role}'} must be {want}, not {got}"
    if missing := _MISSING.fullmatch(what):
        return f"{'.'.join(filter(None, (path, missing['field'])))} is missing"
    return f"{what} (at {path})" if path else what


def _json_type(names: str) -> str:
    return " or ".join(_JSON_TYPES.get(name, f"`{name}`") for name in names.split(" | "))
