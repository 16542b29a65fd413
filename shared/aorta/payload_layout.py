"""Where a payload's bytes live in the blob store, and how their names look on the wire.

One payload is one prefix, `payloads/<payload-id>/`, holding `input/` (what the client uploaded
or the reusable payloads a job was given) and `operators/<operator>/` (one folder per operator
output: the operator's folder itself for its unnamed output, `<operator>/<output-name>/` for a
named one). Clara clients see the same tree rooted at `/`: `/input/scan.nii.gz`,
`/operators/reader/volume.nii.gz`. Job logs live apart, under `logs/<job-id>/`.
"""

from __future__ import annotations

PAYLOADS_ROOT = "payloads/"
LOGS_ROOT = "logs/"
INPUT_FOLDER = "input"
OPERATORS_FOLDER = "operators"


def payload_prefix(payload_id: str) -> str:
    """The blob prefix of everything in one payload (ends with `/`)."""
    return f"{PAYLOADS_ROOT}{payload_id}/"


def input_prefix(payload_id: str) -> str:
    """The blob prefix of a payload's `input/` folder (ends with `/`)."""
    return f"{payload_prefix(payload_id)}{INPUT_FOLDER}/"


def input_key(payload_id: str, name: str) -> str:
    """The blob key of an uploaded file; `name` is already a validated relative path."""
    return f"{input_prefix(payload_id)}{name}"


def operator_output_prefix(payload_id: str, operator: str, output_name: str | None) -> str:
    """The blob prefix of one operator output (its unnamed output is the operator's folder)."""
    base = f"{payload_prefix(payload_id)}{OPERATORS_FOLDER}/{operator}/"
    return f"{base}{output_name}/" if output_name else base


def wire_name(payload_id: str, key: str) -> str:
    """The name Clara clients see for a blob key of this payload: rooted at the payload."""
    prefix = payload_prefix(payload_id)
    if not key.startswith(prefix):
        raise ValueError(f"{key!r} is not inside payload {payload_id}")
    return "/" + key[len(prefix) :]


def key_from_wire_name(payload_id: str, name: str) -> str:
    """The blob key for a client-given name such as `/operators/op/x`, `./input/a` or `input/a`.

    Only strips the optional `./` or `/` root; the caller validates the rest as a blob key.
    """
    relative = name
    if relative.startswith("./"):
        relative = relative[2:]
    relative = relative.lstrip("/")
    return f"{payload_prefix(payload_id)}{relative}"


def job_logs_prefix(job_id: str) -> str:
    """The blob prefix of one job's operator logs (ends with `/`)."""
    return f"{LOGS_ROOT}{job_id}/"


def operator_log_key(job_id: str, operator: str) -> str:
    """The blob key of one operator's captured stdout and stderr, one line per log line."""
    return f"{job_logs_prefix(job_id)}{operator}.log"
