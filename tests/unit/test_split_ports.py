"""Servers started together (the split platform's replicas, the deployment's pods) are never
handed one port twice, even when the port drawn for the second is still free because the
first has not bound it yet."""

from __future__ import annotations

import pytest

from aorta.children import ports
from aorta.testing.ports import PortPool


def test_a_pool_never_hands_out_a_port_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = iter([20001, 20001, 20002, 20001, 20002, 20003])
    monkeypatch.setattr(ports, "restart_safe_port", lambda: next(drawn))
    pool = PortPool()
    assert [pool.take() for _ in range(3)] == [20001, 20002, 20003]


def test_its_ports_are_below_the_ephemeral_range() -> None:
    """No outgoing connection of the servers takes one while they start."""
    pool = PortPool()
    assert all(pool.take() < ports.ephemeral_low() for _ in range(20))
