"""Fixtures shared by the end-to-end tests."""

from tests.e2e.container_platform import podman_engine  # noqa: F401  (a fixture, re-exported)
from tests.e2e.sdk_jobs_platform import sdk_platform  # noqa: F401  (a fixture, re-exported)
