"""Names and labels of the objects Aorta creates on Kubernetes: pure and deterministic.

A pod's name is a function of (job, operator, attempt) only, so a scheduler that retries a
`start` after a crash asks for the very same name and finds the pod it made (409 Conflict on
create → adopt). Names are DNS-1123 labels (at most 63 characters, lowercase alphanumerics and
`-`): readable where the parts fit, shortened with a hash of the exact parts where they do not,
or where making them lowercase-and-dashes lost information (`seg_a` and `seg-a` are different
operators; Clara names are case-insensitive, so case alone is never a difference).
"""

from __future__ import annotations

import hashlib
import re

MAX_NAME = 63
HASH_LENGTH = 10

MANAGED_BY = "app.kubernetes.io/managed-by"
INSTANCE = "app.kubernetes.io/instance"
COMPONENT = "app.kubernetes.io/component"
PLATFORM = "aorta"

JOB_LABEL = "aorta/job"
OPERATOR_LABEL = "aorta/operator"
ATTEMPT_LABEL = "aorta/attempt"
RUN_LABEL = "aorta/run"
SERVER_LABEL = "aorta/triton-server"
RUN_ID_ANNOTATION = "aorta/run-id"
"""The exact run id (a label value may have had to be shortened)."""
OPERATOR_ANNOTATION = "aorta/operator-name"

OPERATOR_COMPONENT = "operator"
TRITON_COMPONENT = "triton"

_NOT_DNS = re.compile(r"[^a-z0-9-]+")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def _digest(*parts: str) -> str:
    joined = "\x00".join(parts).encode("utf-8")
    return hashlib.sha256(joined).hexdigest()[:HASH_LENGTH]


def dns_name(*parts: str, limit: int = MAX_NAME) -> str:
    """A DNS-1123 label made of `parts` joined by `-`, deterministic and at most `limit` long.

    Lowercased; runs of other characters become `-`. When that lost information (any character
    other than a case change) or the result is too long, the readable form is cut to leave room
    for `-` and a hash of the exact parts, so distinct parts never share a name.
    """
    readable = "-".join(_NOT_DNS.sub("-", part.lower()).strip("-") for part in parts)
    readable = re.sub("-{2,}", "-", readable).strip("-")
    exact = "-".join(part.lower() for part in parts)
    if readable == exact and readable and len(readable) <= limit:
        return readable
    suffix = _digest(*(part.lower() for part in parts))
    head = readable[: limit - len(suffix) - 1].rstrip("-")
    return f"{head}-{suffix}" if head else f"x-{suffix}"


def label_value(text: str) -> str:
    """`text` itself when it is a valid label value, else a readable head and a hash."""
    if len(text) <= MAX_NAME and _LABEL_VALUE.match(text):
        return text
    suffix = _digest(text)
    head = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[: MAX_NAME - len(suffix) - 1]
    head = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", head)
    return f"{head}-{suffix}" if head else suffix


def pod_name(job_id: str, operator: str, attempt: int) -> str:
    """The pod of one attempt of one operator of one job: `aorta-<job>-<operator>-<attempt>`."""
    return dns_name(PLATFORM, job_id, operator, str(attempt))


def triton_name(server_id: str) -> str:
    """The Deployment and Service of one pooled Triton server: `triton-<server id>`."""
    return dns_name("triton", server_id)


def base_labels(instance: str, component: str) -> dict[str, str]:
    """The labels every object of one platform instance and component carries."""
    return {MANAGED_BY: PLATFORM, INSTANCE: instance, COMPONENT: component}


def selector(labels: dict[str, str]) -> str:
    """A label selector matching every label of `labels` (`k=v,k=v`)."""
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
