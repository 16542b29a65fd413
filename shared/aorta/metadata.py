"""Clara's metadata rules, shared by every service that keeps metadata on an object.

Pipelines, jobs, payloads and models all carry a map of string keys to string values with the
same rules (docs/clara-compatibility.md, "Metadata limits"): a key holds at most 128 bytes and a
value at most 256 bytes (UTF-8); an object's metadata holds at most 4 MB in all; adding a key
that already exists, or two keys in one request that differ only in case, fails the whole
request and changes nothing. Keys keep the spelling they were added with and are compared
case-insensitively (`str.casefold`).

Aorta's choices where Clara is silent:

- a key may not be empty; neither a key nor a value may hold a NUL character (no state store
  can keep one);
- the 4 MB total is 4 MiB counted as the UTF-8 bytes of every key and value;
- removing a key that is absent is not an error: the request asks for a state ("no such key")
  that already holds, so a retried removal succeeds. Keys to remove are matched
  case-insensitively too.

Pure functions: they never change their arguments, and raise `Invalid` with
`ErrorCode.METADATA_INVALID`, one message per problem found, before anything could be changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aorta.errors import ErrorCode, Invalid

MAX_KEY_BYTES = 128
MAX_VALUE_BYTES = 256
MAX_TOTAL_BYTES = 4 * 1024 * 1024
"""Most bytes (keys and values, UTF-8) one object's metadata may hold."""

_SHOWN = 40
_MAX_MESSAGES = 20

Entries = Mapping[str, str] | Iterable[tuple[str, str]]
"""Metadata as a mapping, or as (key, value) pairs when a request may repeat a key."""


def metadata_size(metadata: Mapping[str, str]) -> int:
    """The bytes `metadata` counts against `MAX_TOTAL_BYTES`."""
    return sum(_size(key) + _size(value) for key, value in metadata.items())


def add_metadata(
    current: Mapping[str, str], new: Entries, *, max_total: int = MAX_TOTAL_BYTES
) -> dict[str, str]:
    """`current` with the entries of `new` added (in their order, after the existing ones).

    Raises `Invalid` (METADATA_INVALID) when a key or value breaks the size or character rules,
    when a key of `new` already exists in `current` or appears twice in `new` (both compared
    case-insensitively), or when the result would hold more than `max_total` bytes.
    """
    pairs = list(new.items()) if isinstance(new, Mapping) else list(new)
    problems: list[str] = []
    existing = {key.casefold(): key for key in current}
    seen: dict[str, str] = {}
    for key, value in pairs:
        problems.extend(_entry_problems(key, value))
        folded = key.casefold()
        if folded in existing:
            problems.append(
                f"metadata key {_shown(key)} already exists (as {_shown(existing[folded])}; "
                "keys are not case-sensitive): remove it first to change its value"
            )
        elif folded in seen:
            problems.append(
                f"metadata key {_shown(key)} is given twice in one request (as "
                f"{_shown(seen[folded])} too; keys are not case-sensitive)"
            )
        seen.setdefault(folded, key)
    if problems:
        raise _invalid(problems)
    result = dict(current)
    result.update(pairs)
    total = metadata_size(result)
    if total > max_total:
        raise Invalid(
            f"the metadata would hold {total} bytes; an object's metadata may hold at most "
            f"{max_total} bytes (keys and values together)",
            code=ErrorCode.METADATA_INVALID,
        )
    return result


def remove_metadata(current: Mapping[str, str], keys: Iterable[str]) -> dict[str, str]:
    """`current` without the entries whose keys match one of `keys` case-insensitively.

    Keys that match nothing are ignored (see the module docstring); the order of the remaining
    entries is kept.
    """
    removed = {key.casefold() for key in keys}
    return {key: value for key, value in current.items() if key.casefold() not in removed}


def _entry_problems(key: str, value: str) -> list[str]:
    problems = []
    if not key:
        problems.append("a metadata key may not be empty")
    if _size(key) > MAX_KEY_BYTES:
        problems.append(
            f"metadata key {_shown(key)} is {_size(key)} bytes; a key may hold at most "
            f"{MAX_KEY_BYTES} bytes (UTF-8)"
        )
    if _size(value) > MAX_VALUE_BYTES:
        problems.append(
            f"the value of metadata key {_shown(key)} is {_size(value)} bytes; a value may hold "
            f"at most {MAX_VALUE_BYTES} bytes (UTF-8)"
        )
    if "\x00" in key or "\x00" in value:
        problems.append(f"metadata key {_shown(key)}: keys and values may not hold NUL characters")
    return problems


def _invalid(problems: list[str]) -> Invalid:
    shown = problems[:_MAX_MESSAGES]
    if len(problems) > _MAX_MESSAGES:
        shown.append(f"... and {len(problems) - _MAX_MESSAGES} more problems")
    return Invalid(*shown, code=ErrorCode.METADATA_INVALID)


def _size(text: str) -> int:
    # surrogatepass: a lone surrogate (possible in a str, never on the wire) still has a size.
    return len(text.encode("utf-8", "surrogatepass"))


def _shown(key: str) -> str:
    return repr(key if len(key) <= _SHOWN else key[: _SHOWN - 3] + "...")
