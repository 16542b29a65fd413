"""The caller across the bus: one header that names subject and roles, none for ANONYMOUS,
and a malformed one refused rather than taken for an admin."""

from __future__ import annotations

import pytest

from aorta.auth.caller import CALLER_HEADER, caller_headers, caller_of
from aorta.auth.principal import ANONYMOUS, Principal, Role, calling_as
from aorta.errors import Unauthenticated

ALICE = Principal("alice", frozenset({Role.USER, Role.VIEWER}))


@pytest.mark.parametrize(
    "principal",
    [
        ALICE,
        Principal("Zoë Ærø\n", frozenset({Role.ADMIN})),
        Principal("", frozenset({Role.USER})),
        Principal("no-roles", frozenset()),
    ],
    ids=["user", "non-ascii", "empty-subject", "no-roles"],
)
def test_a_principal_survives_its_header(principal: Principal) -> None:
    headers = caller_headers(principal)
    assert headers[CALLER_HEADER].isascii() and "\n" not in headers[CALLER_HEADER]
    assert caller_of(headers) == principal


def test_anonymous_travels_as_no_header_and_no_header_is_anonymous() -> None:
    assert caller_headers(ANONYMOUS) == {}
    assert caller_of({}) == ANONYMOUS
    assert caller_of({"Aorta-Request-Id": "r1"}) == ANONYMOUS


def test_the_current_caller_is_the_default() -> None:
    assert caller_headers() == {}
    with calling_as(ALICE):
        assert caller_of(caller_headers()) == ALICE


@pytest.mark.parametrize(
    "value",
    [
        "",
        "{",
        "[]",
        '{"subject": "a"}',
        '{"subject": 1, "roles": []}',
        '{"subject": "a", "roles": "admin"}',
    ],
)
def test_a_malformed_header_is_refused_not_taken_for_an_admin(value: str) -> None:
    with pytest.raises(Unauthenticated, match="caller header is malformed"):
        caller_of({CALLER_HEADER: value})


def test_unknown_roles_are_dropped() -> None:
    caller = caller_of({CALLER_HEADER: '{"subject": "a", "roles": ["user", "superuser"]}'})
    assert caller == Principal("a", frozenset({Role.USER}))
