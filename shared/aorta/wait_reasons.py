"""How a job's wait reasons reach clients beside Clara's messages (pure, no I/O).

The scheduler keeps, for every queued job and every operator that is ready but cannot start,
one current reason (docs/observability.md, "Why a job waits"). `Jobs.Status` carries it twice:

- in words, as lines of the response's `messages`, which every Clara client shows:
  `waiting: <words>` for the job, `operator <name> waiting: <words>` for an operator;
- in its typed form, as the gRPC initial metadata `WAITING_METADATA`: the JSON document
  `{"job": {...}, "operators": {"<name>": {...}}}` (only the keys that apply), each reason with
  its `kind` (queued, resources, service, triton, held), its facts and its `text`,
  percent-encoded because metadata values are printable ASCII.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote

WAITING_METADATA = "aorta-waiting"
"""The gRPC initial-metadata key of a job's wait reasons in their typed form."""

_PRINTABLE_ASCII = "".join(chr(code) for code in range(0x20, 0x7F) if chr(code) != "%")
_OPERATOR_LINE = re.compile(r"operator (\S+) waiting: (.*)", re.DOTALL)
_JOB_PREFIX = "waiting: "


def job_line(text: str) -> str:
    """The `messages` line of a job's own reason."""
    return f"{_JOB_PREFIX}{text}"


def operator_line(operator: str, text: str) -> str:
    """The `messages` line of an operator's reason."""
    return f"operator {operator} waiting: {text}"


def parse_line(line: str) -> tuple[str, str] | None:
    """(operator, words) of a `job_line` (operator "") or an `operator_line`; None for any
    other `messages` line."""
    if line.startswith(_JOB_PREFIX):
        return "", line.removeprefix(_JOB_PREFIX)
    matched = _OPERATOR_LINE.fullmatch(line)
    return (matched.group(1), matched.group(2)) if matched else None


def is_wait_line(line: str) -> bool:
    """Whether a `messages` line is one of `job_line`'s or `operator_line`'s."""
    return parse_line(line) is not None


def lines(waits: Mapping[str, Any]) -> list[str]:
    """The `messages` lines of a waits document (the form `WAITING_METADATA` carries)."""
    found = []
    job = waits.get("job")
    if job:
        found.append(job_line(str(job["text"])))
    for name, reason in (waits.get("operators") or {}).items():
        found.append(operator_line(name, str(reason["text"])))
    return found


def to_metadata(waits: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The initial metadata carrying a waits document; none when it is empty."""
    if not waits:
        return ()
    text = json.dumps(waits, separators=(",", ":"), sort_keys=True)
    return ((WAITING_METADATA, quote(text, safe=_PRINTABLE_ASCII)),)


def from_metadata(metadata: Iterable[tuple[str, str | bytes]] | None) -> dict[str, Any]:
    """The waits document initial `metadata` carries; empty when it carries none (an older
    platform, a job that does not wait) or one that does not parse."""
    for key, value in metadata or ():
        if key == WAITING_METADATA and isinstance(value, str):
            try:
                document = json.loads(unquote(value))
            except ValueError:
                return {}
            return document if isinstance(document, dict) else {}
    return {}
