"""Blob keys: the one set of naming rules every blob store enforces.

A key is a `/`-separated relative path such as `payloads/<id>/input/a/b.nii.gz`. The rules are
the intersection of what S3 and a POSIX folder can both store faithfully, so a key accepted here
means the same object in every adapter and can never escape the local store's root:

- not empty, at most 1024 bytes in UTF-8 (S3's limit), valid Unicode (no lone surrogates);
- no leading `/`, no empty segment (`a//b`, trailing `/`), no `.` or `..` segment, no segment
  longer than 255 bytes in UTF-8 (what nearly every filesystem allows for a file name);
- no NUL or other control character;
- the first segment is not `.aorta`, which the stores keep for their own bookkeeping (the local
  store stages uploads there).

A prefix follows the same rules, except that it may be empty (everything) and may end with `/`.
"""

from __future__ import annotations

from aorta.errors import ErrorCode, Invalid
from aorta.relative_paths import segment_problem, text_problem

MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 255
RESERVED_SEGMENT = ".aorta"
"""First segment of every key the stores keep for themselves."""

_SHOWN = 80
# Blob keys are payload file names and model paths as far as a Clara client can tell.
_CODE = ErrorCode.PAYLOAD_FILE_NAME_INVALID


def check_key(key: str) -> str:
    """Returns `key` unchanged when it is a valid blob key; raises `Invalid` saying why not."""
    problem = _problem(key, is_prefix=False)
    if problem:
        raise Invalid(f"blob key {_shown(key)} is not valid: {problem}", code=_CODE)
    return key


def check_prefix(prefix: str) -> str:
    """Returns `prefix` unchanged when it is a valid key prefix; raises `Invalid` saying why not.

    The empty prefix is valid (it names every object), and so is one ending with `/`.
    """
    if prefix == "":
        return prefix
    problem = _problem(prefix, is_prefix=True)
    if problem:
        raise Invalid(f"blob prefix {_shown(prefix)} is not valid: {problem}", code=_CODE)
    return prefix


def _problem(text: str, *, is_prefix: bool) -> str | None:
    if not isinstance(text, str):
        return f"expected a string, got {type(text).__name__}"
    problem = text_problem(text, MAX_KEY_BYTES)
    if problem is not None:
        return problem
    if text.startswith("/"):
        return "it starts with '/' (keys are relative paths)"
    segments = text.split("/")
    if is_prefix and segments[-1] == "":
        # A prefix may end with "/": the last, empty segment is its trailing separator.
        segments = segments[:-1]
    for segment in segments:
        if problem := segment_problem(segment, MAX_SEGMENT_BYTES):
            return problem
    # A prefix without "/" may be part of a first segment; only a whole `.aorta` is reserved.
    if segments[0] == RESERVED_SEGMENT and (not is_prefix or "/" in text):
        return f"the first segment {RESERVED_SEGMENT!r} is reserved for the stores' bookkeeping"
    return None


def _shown(text: object) -> str:
    if isinstance(text, str) and len(text) > _SHOWN:
        return repr(text[: _SHOWN - 3] + "...")
    return repr(text)
