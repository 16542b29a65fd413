"""Sessions: bearer tokens first, then the cookie's session, which ends."""

from __future__ import annotations

from aorta_services.web.sessions import COOKIE, MAX_SESSIONS, Sessions


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bearer_token_wins_over_the_cookie() -> None:
    sessions = Sessions(60.0)
    session_id = sessions.open("cookie-token")
    found = sessions.credentials({"Authorization": "Bearer header-token"}, {COOKIE: session_id})
    assert found.token == "header-token"


def test_the_cookie_names_its_token_until_the_session_ends() -> None:
    clock = Clock()
    sessions = Sessions(60.0, clock=clock)
    session_id = sessions.open("secret")
    assert sessions.credentials({}, {COOKIE: session_id}).token == "secret"
    clock.now = 61.0
    ended = sessions.credentials({}, {COOKIE: session_id})
    assert ended.token is None and ended.stale_cookie


def test_signing_out_ends_the_session_and_nothing_presented_is_not_stale() -> None:
    sessions = Sessions(60.0)
    session_id = sessions.open("secret")
    sessions.close(session_id)
    assert sessions.credentials({}, {COOKIE: session_id}).stale_cookie
    nothing = sessions.credentials({}, {})
    assert nothing.token is None and not nothing.stale_cookie


def test_session_ids_are_unguessable_and_the_oldest_go_beyond_the_limit() -> None:
    sessions = Sessions(60.0)
    first = sessions.open("t0")
    ids = {sessions.open(f"t{n}") for n in range(1, MAX_SESSIONS + 1)}
    assert len(ids) == MAX_SESSIONS and all(len(i) >= 40 for i in ids)
    assert sessions.token(first) is None
