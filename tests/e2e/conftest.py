"""Fixtures shared by the end-to-end tests."""


# The support modules live beside this file; importlib mode does not put it on the path.

from tests.e2e.sdk_jobs_platform import sdk_platform  # noqa: F401  (a fixture, re-exported)
