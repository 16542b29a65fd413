"""The pool's placement rules as pure logic."""

from __future__ import annotations

import pytest

from aorta.errors import ErrorCode, Invalid, Unavailable
from aorta_services.models.domain.placement import (
    Placement,
    ServerView,
    next_expiry,
    place,
    to_stop,
)


def idle(id: str, models: dict[str, str], since: float = 0.0) -> ServerView:
    return ServerView(id, None, models, since)


def held(id: str, job: str, models: dict[str, str]) -> ServerView:
    return ServerView(id, job, models)


def decide(
    job: str, wanted: dict[str, str], servers: list[ServerView], *, limit: int = 8, most: int = 4
) -> Placement:
    return place(job, wanted, servers, models_per_server=limit, max_servers=most)


def test_an_empty_pool_starts_a_server_with_every_model() -> None:
    assert decide("a", {"seg": "r1", "lung": "r1"}, []) == Placement(None, ("lung", "seg"))


def test_the_idle_server_holding_the_most_requested_models_is_preferred() -> None:
    servers = [
        idle("one", {"seg": "r1"}),
        idle("two", {"seg": "r1", "lung": "r1"}),
        idle("none", {}),
    ]
    assert decide("a", {"seg": "r1", "lung": "r1", "liver": "r1"}, servers) == Placement(
        "two", ("liver",)
    )


def test_a_model_loaded_at_an_older_revision_counts_as_missing() -> None:
    servers = [idle("old", {"seg": "r1"}), idle("new", {"seg": "r2"})]
    assert decide("a", {"seg": "r2"}, servers) == Placement("new", ())
    assert decide("a", {"seg": "r3"}, servers[:1]) == Placement("old", ("seg",))


def test_a_server_held_by_another_job_is_never_chosen() -> None:
    servers = [held("busy", "b", {"seg": "r1"})]
    assert decide("a", {"seg": "r1"}, servers) == Placement(None, ("seg",))


def test_no_server_can_be_had_when_all_are_held_and_the_pool_is_full() -> None:
    servers = [held(f"s{i}", f"job{i}", {"seg": "r1"}) for i in range(4)]
    with pytest.raises(Unavailable, match="all 4 Triton servers are held by running jobs"):
        decide("a", {"seg": "r1"}, servers, most=4)


def test_the_operators_of_one_job_share_its_server_when_the_models_fit() -> None:
    servers = [held("mine", "a", {"seg": "r1"}), idle("warm", {"lung": "r1"})]
    assert decide("a", {"lung": "r1"}, servers) == Placement("mine", ("lung",))


def test_within_a_job_a_loaded_model_keeps_its_revision() -> None:
    servers = [held("mine", "a", {"seg": "r1"})]
    assert decide("a", {"seg": "r2"}, servers) == Placement("mine", ())


def test_a_job_gets_another_server_when_its_own_is_full() -> None:
    servers = [held("mine", "a", {"m1": "r", "m2": "r"}), idle("warm", {})]
    assert decide("a", {"m3": "r"}, servers, limit=2) == Placement("warm", ("m3",))


def test_an_idle_server_unloads_models_nobody_asked_for_only_to_make_room() -> None:
    servers = [idle("warm", {"old1": "r", "old2": "r", "seg": "r"})]
    assert decide("a", {"seg": "r", "lung": "r"}, servers, limit=3) == Placement(
        "warm", ("lung",), ("old1",)
    )
    assert decide("a", {"seg": "r", "lung": "r"}, servers, limit=4) == Placement(
        "warm", ("lung",), ()
    )


def test_ties_go_to_fewer_unloads_then_the_most_recently_released() -> None:
    servers = [
        idle("crowded", {"x": "r", "y": "r"}, since=5.0),
        idle("older", {}, since=1.0),
        idle("newer", {}, since=3.0),
    ]
    assert decide("a", {"seg": "r"}, servers, limit=2).server == "newer"


def test_more_models_than_one_server_holds_are_refused() -> None:
    with pytest.raises(Invalid) as caught:
        decide("a", {f"m{i}": "r" for i in range(3)}, [], limit=2)
    assert caught.value.code == ErrorCode.MODEL_REQUEST_INVALID
    assert "one Triton server holds at most 2" in caught.value.messages[0]


def test_idle_servers_past_the_idle_time_or_beyond_the_pool_size_are_stopped() -> None:
    servers = [
        idle("expired", {}, since=0.0),
        idle("recent", {}, since=90.0),
        idle("middle", {}, since=60.0),
        idle("older", {}, since=50.0),
        held("busy", "job", {}),
    ]
    assert to_stop(servers, now=100.0, pool_size=2, idle_seconds=60.0) == ["expired", "older"]
    assert to_stop(servers, now=100.0, pool_size=0, idle_seconds=600.0) == [
        "recent",
        "middle",
        "older",
        "expired",
    ]
    assert to_stop(servers, now=100.0, pool_size=5, idle_seconds=600.0) == []


def test_the_next_expiry_is_the_earliest_idle_server() -> None:
    servers = [idle("a", {}, since=10.0), idle("b", {}, since=4.0), held("c", "job", {})]
    assert next_expiry(servers, idle_seconds=30.0) == 34.0
    assert next_expiry(servers[2:], idle_seconds=30.0) is None
