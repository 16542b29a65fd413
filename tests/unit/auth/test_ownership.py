"""The ownership rule: a user acts on its own things, an admin on everything, things made
without authentication are an admin's; refusals never name the owner; List is limited for a
user only; the owner travels in gRPC metadata as printable ASCII."""

from __future__ import annotations

import pytest

from aorta.auth.ownership import (
    OWNER_METADATA,
    check_owner,
    check_reader,
    listed_owner,
    owner_from_metadata,
    owner_metadata,
)
from aorta.auth.principal import ANONYMOUS, Principal, Role, calling_as
from aorta.errors import Forbidden

ALICE = Principal("alice", frozenset({Role.USER}))
BOB = Principal("bob", frozenset({Role.USER}))
VIEWER = Principal("vera", frozenset({Role.VIEWER}))
ADMIN = Principal("ada", frozenset({Role.ADMIN}))


def test_the_owner_and_an_admin_may() -> None:
    check_owner("alice", "job j1", ALICE)
    check_owner("alice", "job j1", ADMIN)
    check_owner("", "job j1", ADMIN)
    with calling_as(ALICE):
        check_owner("alice", "job j1")


@pytest.mark.parametrize("caller", [BOB, VIEWER], ids=["user", "viewer"])
def test_anyone_else_is_refused_without_learning_the_owner(caller: Principal) -> None:
    with pytest.raises(Forbidden) as caught:
        check_owner("alice", "job j1", caller)
    assert caught.value.messages == ("job j1 belongs to another user",)


def test_a_thing_made_without_authentication_is_an_admins() -> None:
    with pytest.raises(Forbidden, match="payload p1 was created before authentication"):
        check_owner("", "payload p1", Principal("", frozenset({Role.USER})))
    check_owner("", "payload p1", ANONYMOUS)


def test_a_user_reads_its_own_things_a_viewer_and_an_admin_everything() -> None:
    for caller in (ALICE, VIEWER, ADMIN, ANONYMOUS):
        check_reader("alice", "job j1", caller)
    check_reader("", "job j1", VIEWER)
    check_reader("", "job j1", ADMIN)
    with pytest.raises(Forbidden) as caught:
        check_reader("alice", "job j1", BOB)
    assert caught.value.messages == ("job j1 belongs to another user",)
    with pytest.raises(Forbidden, match="payload p1 was created before authentication"):
        check_reader("", "payload p1", ALICE)
    with calling_as(BOB), pytest.raises(Forbidden):
        check_reader("alice", "job j1")


def test_list_is_limited_for_a_user_only() -> None:
    assert listed_owner(ALICE) == "alice"
    assert listed_owner(Principal("both", frozenset({Role.USER, Role.VIEWER}))) == "both"
    assert listed_owner(VIEWER) is None
    assert listed_owner(ADMIN) is None
    assert listed_owner() is None  # ANONYMOUS: authentication is off


@pytest.mark.parametrize("owner", ["alice", "Zoë 100%", "a\nb", "user@example.org"])
def test_the_owner_survives_grpc_metadata(owner: str) -> None:
    [(key, value)] = owner_metadata(owner)
    assert key == OWNER_METADATA
    assert value.isascii() and value.isprintable()
    assert owner_from_metadata([("other", "x"), (key, value)]) == owner


def test_no_owner_sends_nothing_and_reads_as_none() -> None:
    assert owner_metadata("") == ()
    assert owner_from_metadata(None) == ""
    assert owner_from_metadata([("other", "x")]) == ""
