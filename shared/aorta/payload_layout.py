"""Where a payload's bytes live in the blob store, and how their names look on the wire.

One payload is one prefix, `payloads/<payload-id>/`, holding `input/` (what the client uploaded
or the reusable payloads a job was given) and `operators/<operator>/` (one folder per operator
output: the operator's folder itself for its unnamed output, `<operator>/<output-name>/` for a
named one). Clara clients see the same tree rooted at `/`: `/input/scan.nii.gz`,
`/operators/reader/volume.nii.gz`. Job logs live apart, under `logs/<job-id>/`.

The SHA-256 of each stored operator output file is kept apart too, so that no client sees it as
a file of the payload: whoever pushes an output (the local executor, the agent in a pod) writes
one manifest per output prefix at `checksums/<output prefix>SHA256SUMS.json`, and the payloads
service reads the manifests under `checksums/payloads/<payload-id>/` as it reads its own records
of uploads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

PAYLOADS_ROOT = "payloads/"
LOGS_ROOT = "logs/"
CHECKSUMS_ROOT = "checksums/"
CHECKSUMS_MANIFEST = "SHA256SUMS.json"
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


@dataclass(frozen=True)
class StoredChecksum:
    """What a push learned about one stored file: its blob key, size and SHA-256 (hex)."""

    key: str
    size: int
    sha256: str


def output_checksums_key(output_prefix: str) -> str:
    """The blob key of the checksum manifest of the output stored under `output_prefix`."""
    return f"{CHECKSUMS_ROOT}{output_prefix}{CHECKSUMS_MANIFEST}"


def payload_checksums_prefix(payload_id: str) -> str:
    """The blob prefix of every checksum manifest of one payload's outputs (ends with `/`)."""
    return f"{CHECKSUMS_ROOT}{payload_prefix(payload_id)}"


def checksum_manifest(output_prefix: str, stored: Iterable[StoredChecksum]) -> bytes:
    """The manifest of the files pushed under `output_prefix`: JSON, names relative to it."""
    files = [
        {"name": item.key[len(output_prefix) :], "size": item.size, "sha256": item.sha256}
        for item in stored
        if item.key.startswith(output_prefix)
    ]
    return json.dumps({"files": files}, separators=(",", ":")).encode()


def read_checksum_manifest(manifest_key: str, data: bytes) -> Mapping[str, StoredChecksum]:
    """The checksums a manifest stored at `manifest_key` holds, by blob key. A manifest that
    is not one (damaged, or from another version) holds none: files without a checksum are
    downloaded unchecked, never refused."""
    if not (manifest_key.startswith(CHECKSUMS_ROOT) and manifest_key.endswith(CHECKSUMS_MANIFEST)):
        return {}
    output_prefix = manifest_key[len(CHECKSUMS_ROOT) : -len(CHECKSUMS_MANIFEST)]
    try:
        files = json.loads(data)["files"]
        found = {
            output_prefix + str(item["name"]): StoredChecksum(
                output_prefix + str(item["name"]), int(item["size"]), str(item["sha256"])
            )
            for item in files
        }
    except (ValueError, TypeError, KeyError):
        return {}
    return found
