"""Fixtures shared by the end-to-end tests."""

import sys
from pathlib import Path

# The support modules live beside this file; importlib mode does not put it on the path.
sys.path.insert(0, str(Path(__file__).parent))

from sdk_jobs_platform import sdk_platform  # noqa: F401  (a fixture, re-exported)
