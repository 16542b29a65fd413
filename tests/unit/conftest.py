"""Fixtures every unit test may ask for."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from aorta.testing.otlp_collector import memory_spans


@pytest.fixture
def exported_spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on in the test's process, every span exported to this in-memory exporter; off
    again after the test."""
    with memory_spans() as exporter:
        yield exporter
