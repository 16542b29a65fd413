"""Who is calling: the bearer token of a request, checked against the tokens file or OIDC.

The gateway hands `Authenticator.authenticate` the metadata of each call and binds the
principal it returns (`aorta.auth.principal.calling_as`). Tokens from the tokens file are
opaque (`aorta_...`, no dots); anything shaped like a JWT goes to OIDC, so the two sources can be
used together without trying a token against both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from aorta.auth.oidc import OidcVerifier
from aorta.auth.principal import Principal
from aorta.auth.tokens import TokenFile, TokensFileInvalid
from aorta.errors import Forbidden, Invalid, Unauthenticated, Unavailable
from aorta.logger import get_logger
from aorta.settings import Settings

log = get_logger(__name__)

HEADER = "authorization"
_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
_HOW = "send the header `authorization: Bearer <token>`"


class Authenticator:
    """Turns a call's metadata into its principal, from a tokens file, OIDC, or both."""

    def __init__(
        self,
        tokens: TokenFile | None = None,
        oidc: OidcVerifier | None = None,
        *,
        roles_claim: str = "roles",
    ) -> None:
        if tokens is None and oidc is None:
            raise ValueError("an authenticator needs a tokens file, OIDC, or both")
        self.tokens = tokens
        self.oidc = oidc
        self._roles_claim = roles_claim

    async def authenticate(self, metadata: Iterable[tuple[str, str | bytes]]) -> Principal:
        """The principal the call's `authorization: Bearer <token>` header names.

        Raises `Unauthenticated` when the header is missing, malformed or names no known
        token, `Forbidden` when the token holds no Aorta role, and `Unavailable` when the
        tokens file or the identity provider's keys cannot be read now. No message repeats
        the token.
        """
        token = bearer_token(metadata)
        if _JWT_SHAPE.match(token):
            principal = await self._from_oidc(token)
            where = f"its token's {self._roles_claim!r} claim"
        else:
            principal = self._from_tokens_file(token)
            where = "its entry in the tokens file"
        if not principal.roles:
            raise Forbidden(
                f"{principal.subject} holds no Aorta role: {where} must name viewer, user or admin"
            )
        return principal

    async def _from_oidc(self, token: str) -> Principal:
        if self.oidc is None:
            raise Unauthenticated(
                "this platform accepts no OpenID Connect tokens; use a token from its tokens "
                "file (`aorta token create`)"
            )
        return await self.oidc.verify(token)

    def _from_tokens_file(self, token: str) -> Principal:
        if self.tokens is None:
            raise Unauthenticated(
                "this platform accepts OpenID Connect tokens (JWTs) only; the token sent is not one"
            )
        try:
            found = self.tokens.lookup(token)
        except TokensFileInvalid as exc:
            # The operator needs the details; the caller must not learn the server's paths.
            log.error("tokens_file_invalid", problem="; ".join(exc.messages))
            raise Unavailable(
                "the platform cannot check tokens now: its tokens file is broken "
                "(the gateway's log says why)"
            ) from exc
        if found is None:
            raise Unauthenticated(
                "the token is not known to this platform (revoked, mistyped, or for another "
                "platform)"
            )
        return found


def bearer_token(metadata: Iterable[tuple[str, str | bytes]]) -> str:
    """The token of the one `authorization: Bearer <token>` entry of `metadata`.

    The scheme is matched ignoring case (RFC 7235). Raises `Unauthenticated` saying what is
    missing or wrong.
    """
    values = [value for key, value in metadata if key.lower() == HEADER]
    if not values:
        raise Unauthenticated(f"this platform requires a token: {_HOW}")
    if len(values) > 1:
        raise Unauthenticated(f"the call carries {len(values)} authorization headers; {_HOW}")
    value = values[0]
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    scheme, _, token = text.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthenticated(f"the authorization header is not a bearer token; {_HOW}")
    token = token.strip()
    if not token:
        raise Unauthenticated(f"the authorization header holds no token; {_HOW}")
    return token


def build_authenticator(
    settings: Settings, tokens_file: Path | None = None
) -> Authenticator | None:
    """The authenticator `settings` ask for; None when authentication is off.

    `tokens_file` (what `aorta up --auth` keeps in its data dir) is used when
    `AORTA_AUTH_TOKENS_FILE` is not set. OIDC needs issuer, audience and JWKS together.
    Raises `Invalid` for settings no caller could ever pass (auth on with no source).
    """
    if not settings.auth_enabled:
        return None
    path = (
        Path(settings.auth_tokens_file).expanduser() if settings.auth_tokens_file else tokens_file
    )
    oidc = None
    if settings.oidc_issuer:
        missing = [
            name
            for name, value in (
                ("AORTA_OIDC_AUDIENCE", settings.oidc_audience),
                ("AORTA_OIDC_JWKS", settings.oidc_jwks),
            )
            if not value
        ]
        if missing:
            raise Invalid(f"AORTA_OIDC_ISSUER is set, so {' and '.join(missing)} must be too")
        oidc = OidcVerifier(
            settings.oidc_issuer,
            settings.oidc_audience,
            settings.oidc_jwks,
            settings.oidc_roles_claim,
        )
    if path is None and oidc is None:
        raise Invalid(
            "authentication is on (AORTA_AUTH) but no token source is set: set "
            "AORTA_AUTH_TOKENS_FILE or AORTA_OIDC_ISSUER"
        )
    return Authenticator(
        TokenFile(path) if path is not None else None,
        oidc,
        roles_claim=settings.oidc_roles_claim if oidc is not None else "roles",
    )
