"""A monitor's `ServiceContext` over an in-process bus, with the real SQLite and folder stores
(`tests.unit.memory_services`)."""

from __future__ import annotations

import pytest

from aorta.bus import BusOptions
from tests.unit.memory_services import (  # noqa: F401  (the fixtures)
    client_fixture,
    context_fixture,
    network_fixture,
)


@pytest.fixture
def bus_options() -> BusOptions:
    return BusOptions(drain_timeout=2.0)
