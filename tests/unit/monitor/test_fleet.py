"""The fleet: every node's latest sample, ordered by node, forgotten after three silent periods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aorta.gpu import NodeSample
from aorta_services.monitor.domain.fleet import Fleet

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def sample(node: str, *, at: datetime = T0, interval: float = 1.0) -> NodeSample:
    return NodeSample(node_id=node, interval=interval, taken_at=at)


def test_latest_sample_per_node_ordered_by_node_id() -> None:
    fleet = Fleet(Clock())
    fleet.record(sample("b"))
    fleet.record(sample("a"))
    later = sample("b", at=T0 + timedelta(seconds=1))
    fleet.record(later)
    assert fleet.current() == [sample("a"), later]


def test_an_older_sample_arriving_late_does_not_replace_a_newer_one() -> None:
    fleet = Fleet(Clock())
    newer = sample("a", at=T0 + timedelta(seconds=2))
    fleet.record(newer)
    fleet.record(sample("a"))
    assert fleet.current() == [newer]


def test_a_silent_node_expires_after_three_of_its_own_periods() -> None:
    clock = Clock()
    fleet = Fleet(clock)
    fleet.record(sample("fast", interval=1.0))
    fleet.record(sample("slow", interval=10.0))
    clock.now += 2.9
    assert [n.node_id for n in fleet.current()] == ["fast", "slow"]
    clock.now += 0.1
    assert [n.node_id for n in fleet.current()] == ["slow"]
    clock.now += 27.0
    assert fleet.current() == []


def test_a_fresh_sample_renews_the_expiry() -> None:
    clock = Clock()
    fleet = Fleet(clock)
    fleet.record(sample("a"))
    clock.now += 2.5
    fleet.record(sample("a", at=T0 + timedelta(seconds=2)))
    clock.now += 2.5
    assert [n.node_id for n in fleet.current()] == ["a"]


def test_a_zero_interval_still_lives_a_little() -> None:
    clock = Clock()
    fleet = Fleet(clock)
    fleet.record(sample("a", interval=0.0))
    assert len(fleet.current()) == 1
