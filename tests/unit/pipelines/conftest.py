"""The pipelines service over the in-process bus, with a real SQLite store in tmp_path
(`tests.unit.memory_services`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aorta.runtime.service import RunningService, ServiceContext
from aorta_services.pipelines import app
from tests.unit.memory_services import (  # noqa: F401  (the fixtures)
    bus_options_fixture,
    client_fixture,
    context_fixture,
    network_fixture,
)


@pytest.fixture
async def service(context: ServiceContext) -> AsyncIterator[RunningService]:
    running = await app.start(context)
    yield running
    await running.stop(1.0)


TWO_OPERATORS = """\
api-version: 0.4.0
name: two-operators
orchestrator: Clara
operators:
- name: operator1
  container: {image: example/operator1, tag: latest}
  input:
  - path: /pipeline_input
  output:
  - name: segmentation-output
    path: /output
- name: operator2
  container: {image: example/operator2, tag: latest}
  input:
  - from: operator1
    name: segmentation-output
    path: /input
  output:
  - name: final-output
    path: /output
"""


@pytest.fixture
def two_operators() -> str:
    """Clara's two-operator example (docs/clara-compatibility.md, "The pipeline driver
    life-cycle")."""
    return TWO_OPERATORS
