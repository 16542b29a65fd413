"""The rules every relative path the platform keeps shares: payload file names and blob keys.

Each check returns the first problem it finds, in words that complete "... is not valid: ", or
None. What differs between the two kinds of path (their lengths, a leading `/`, backslashes,
reserved names) stays with their own modules, `aorta.payload_names` and `aorta.blobs.keys`.
"""

from __future__ import annotations

import unicodedata


def text_problem(text: str, max_bytes: int) -> str | None:
    """Empty, not valid Unicode (a lone surrogate), over `max_bytes` in UTF-8, or holding a
    control character."""
    if text == "":
        return "it is empty"
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return "it is not valid Unicode"
    if size > max_bytes:
        return f"it is {size} bytes long in UTF-8, more than the {max_bytes} allowed"
    for char in text:
        if unicodedata.category(char) == "Cc":
            return f"it contains the control character {char!r}"
    return None


def segment_problem(segment: str, max_bytes: int) -> str | None:
    """An empty segment (`a//b`, a trailing `/`), a `.` or `..` segment, or one over
    `max_bytes` in UTF-8."""
    if segment == "":
        return "it has an empty path segment ('//' or a trailing '/')"
    if segment in {".", ".."}:
        return f"it has a {segment!r} path segment"
    if len(segment.encode("utf-8")) > max_bytes:
        return f"a path segment is longer than {max_bytes} bytes in UTF-8"
    return None
