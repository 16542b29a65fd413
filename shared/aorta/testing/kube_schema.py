"""The strict OpenAPI schema check the Kubernetes stand-in (`aorta.testing.kube_api`) runs on
every object a client creates, and that tests run on the objects Aorta builds."""

from __future__ import annotations

from typing import Any

SCHEMA_VERSIONS = ("1.31", "1.37")
"""The Kubernetes releases whose OpenAPI schemas every created object must satisfy: the oldest
release Aorta supports and the newest `kubernetes-validate` knows."""


def check_schema(obj: dict[str, Any]) -> None:
    """Raises ValueError unless `obj` validates, strictly (no unknown field), against the
    schemas of every release in `SCHEMA_VERSIONS` (offline, with `kubernetes-validate`)."""
    import kubernetes_validate  # type: ignore[import-untyped]

    for version in SCHEMA_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = "/".join(str(part) for part in error.absolute_path)
            raise ValueError(f"Kubernetes {version} schema: {where}: {error.message}") from None
