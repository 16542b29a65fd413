"""What can go wrong in a command, and the exit code each failure gives.

Exit codes are a contract with scripts (docs/cli.md): 0 ok, 1 failed (a failed job, a server
error, or a call the platform refused: no or a bad token, a role too low), 2 usage, 3 not
found, 4 the platform cannot be reached, 130 interrupted. Every
failure is translated here exactly once: a negative Clara `ResponseHeader.code`, a gRPC status,
or a local problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum

import grpc

from aorta.errors import ErrorCode


class ExitCode(IntEnum):
    """The exit status of an `aorta` client command."""

    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_FOUND = 3
    UNREACHABLE = 4
    INTERRUPTED = 130


NOT_FOUND_CODES: frozenset[int] = frozenset(
    int(code) for code in ErrorCode if code.name.endswith("_NOT_FOUND")
)
"""Clara response codes that say the named thing does not exist (exit code 3)."""

# The gRPC statuses that mean "no platform answered", as opposed to "it answered no".
_UNREACHABLE_STATUSES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
# Words of gRPC's connection errors that point at TLS rather than at a platform that is down.
_TLS_WORDS = ("ssl", "tls", "handshake", "certificate")


class CliFailure(Exception):
    """A command failed; `message` goes to stderr and `exit_code` ends the process."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class UsageFailure(CliFailure):
    """The command line, a local file or the configuration is wrong (exit code 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.USAGE)


class NotFoundFailure(CliFailure):
    """The thing asked for does not exist (exit code 3)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.NOT_FOUND)


class PlatformFailure(CliFailure):
    """The platform answered with a negative `ResponseHeader.code`.

    The message is the header's messages, one per line, prefixed by what was being done, or
    Clara's "Internal Server Error <code>" when the server sent none.
    """

    def __init__(self, action: str, code: int, messages: Sequence[str]) -> None:
        details = "\n".join(messages) if messages else f"Internal Server Error {code}"
        super().__init__(f"{action} failed ({_code_name(code)}):\n{details}", exit_code_for(code))
        self.code = code
        self.messages = tuple(messages)


def exit_code_for(code: int) -> ExitCode:
    """The exit code of a command that received the Clara response code `code`."""
    if code >= 0:
        return ExitCode.OK
    return ExitCode.NOT_FOUND if code in NOT_FOUND_CODES else ExitCode.FAILED


def rpc_failure(error: grpc.RpcError, *, address: str, method: str) -> CliFailure:
    """The failure a gRPC-level error means: unreachable (4) or a protocol failure (1)."""
    status = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = error.details() if isinstance(error, grpc.Call) else str(error)
    if status in _UNREACHABLE_STATUSES:
        tls_problem = any(word in (details or "").lower() for word in _TLS_WORDS)
        hint = (
            "does --ca / AORTA_CA name the CA that signed the platform's certificate, and does "
            "the platform serve TLS?"
            if tls_problem
            else "is `aorta up` running? set --host or AORTA_HOST"
        )
        return CliFailure(
            f"cannot reach the Aorta platform at {address}: {details or status.name} ({hint})",
            ExitCode.UNREACHABLE,
        )
    if status == grpc.StatusCode.UNAUTHENTICATED:
        return CliFailure(
            f"the platform at {address} refused {method}: {details or 'no valid token'} "
            "(set AORTA_TOKEN or AORTA_TOKEN_FILE to a token it knows; an admin makes one "
            "with `aorta token create`)"
        )
    if status == grpc.StatusCode.PERMISSION_DENIED:
        return CliFailure(
            f"the platform at {address} refused {method}: {details or 'permission denied'}"
        )
    if status == grpc.StatusCode.UNIMPLEMENTED:
        return CliFailure(
            f"the platform at {address} does not implement {method} "
            "(is it an older Aorta, or not an Aorta/Clara platform?)"
        )
    return CliFailure(f"{method} failed at {address}: {status.name}: {details}")


def _code_name(code: int) -> str:
    try:
        return f"{ErrorCode(code).name} {code}"
    except ValueError:
        return f"code {code}"
