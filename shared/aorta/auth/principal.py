"""Principals and roles (pure, no I/O).

A principal is the authenticated caller of one request: a subject (a token's name or an OIDC
`sub`) and the roles it holds. Roles are ordered: an admin may do everything a user may, a user
everything a viewer may. The gateway binds the caller of each request with `calling_as`; code
anywhere below reads it with `current_principal`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


class Role(enum.StrEnum):
    """What a caller may do; each includes everything the one before it may."""

    VIEWER = "viewer"
    USER = "user"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {Role.VIEWER: 0, Role.USER: 1, Role.ADMIN: 2}


def parse_roles(names: Iterable[str]) -> frozenset[Role]:
    """The roles named in `names`; unknown names are ignored (an OIDC provider may send
    roles of other applications)."""
    known = {role.value: role for role in Role}
    return frozenset(known[name] for name in names if name in known)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    subject: str
    roles: frozenset[Role]

    def may(self, role: Role) -> bool:
        """Whether this principal holds `role` or one above it."""
        return any(held.rank >= role.rank for held in self.roles)

    @property
    def is_admin(self) -> bool:
        return self.may(Role.ADMIN)

    def owns(self, owner: str) -> bool:
        """Whether this principal may act on something `owner` created: its own things, and
        everything for an admin. Things created before authentication was on (owner "") are
        an admin's only."""
        return self.is_admin or (bool(owner) and owner == self.subject)


ANONYMOUS = Principal(subject="", roles=frozenset({Role.ADMIN}))
"""The caller when authentication is off: the platform trusts whoever reaches its (loopback)
port, as before authentication existed, and records no owner."""

_CURRENT: ContextVar[Principal] = ContextVar("aorta_principal", default=ANONYMOUS)


def current_principal() -> Principal:
    """The caller of the request being served (`ANONYMOUS` when authentication is off)."""
    return _CURRENT.get()


@contextmanager
def calling_as(principal: Principal) -> Iterator[None]:
    """Binds `principal` as the caller for the code inside the block."""
    token = _CURRENT.set(principal)
    try:
        yield
    finally:
        _CURRENT.reset(token)
