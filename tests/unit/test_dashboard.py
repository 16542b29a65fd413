"""The Grafana dashboard under deploy/ shows every metric family the platform exports and asks
for no series that none exports (a renamed metric would leave an empty panel)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase

from aorta.observability import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "aorta-dashboard.json"
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}


def families() -> dict[str, str]:
    """Every family of `aorta.observability.metrics`, name to type."""
    found = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                found[family.name] = family.type
    return found


def expressions() -> list[str]:
    document = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in document["panels"] for target in panel.get("targets", ())]


def test_every_family_has_a_panel_and_every_series_asked_for_exists() -> None:
    exported = {name + suffix for name, kind in families().items() for suffix in SUFFIXES[kind]}
    asked = {
        name
        for expr in expressions()
        for name in re.findall(r"\b(?:aorta|grpc_server)_[a-z_]+\b", expr)
    }
    assert asked <= exported, sorted(asked - exported)
    shown = {
        name
        for name, kind in families().items()
        if any(name + suffix in asked for suffix in SUFFIXES[kind])
    }
    assert shown == set(families()), sorted(set(families()) - shown)
