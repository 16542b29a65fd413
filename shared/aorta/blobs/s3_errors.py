"""What the S3 store's callers see of the minio client's and urllib3's errors.

A missing object is `NotFound`; S3's throttling and server-side hiccups, an unexpected answer or
an endpoint that cannot be reached are `Unavailable`, which callers may retry; any other refusal
(bad credentials, a missing bucket) is `Internal`, since retrying cannot fix it.
"""

from __future__ import annotations

from minio.error import InvalidResponseError, S3Error, ServerError

from aorta.errors import AortaError, Internal, NotFound, Unavailable

_MISSING = {"NoSuchKey", "NoSuchObject", "NotFound"}
_TRANSIENT = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling"}


def translated(error: Exception, key: str | None, where: str) -> AortaError:
    """The platform's error for `error`, raised by a call about `key` (None when the call is not
    about one object) to the store `where` describes."""
    if isinstance(error, S3Error):
        if error.code in _MISSING and key is not None:
            return NotFound(f"blob {key!r} not found")
        if error.code in _TRANSIENT:
            return Unavailable(f"{where} is busy: {error.code}: {error.message}")
        return Internal(f"{where} refused the request: {error.code}: {error.message}")
    if isinstance(error, ServerError | InvalidResponseError):
        return Unavailable(f"{where} answered unexpectedly: {error}")
    return Unavailable(f"{where} cannot be reached: {error}")
