"""OpenID Connect: JWTs an identity provider signed, checked with PyJWT.

Only asymmetric signatures are accepted, so the keys the platform holds (public ones, from a
JWKS file or URL) can verify tokens but never make one; `none` and the HMAC algorithms are
refused before any key is looked at, which closes the algorithm-confusion attack (an HS256
token "signed" with the provider's public key). Keys are picked by the token's `kid`.

A JWKS URL is fetched with PyJWT's client, which caches the key set for five minutes and
refetches at most every 30 s when a token names a key it does not know (a rotated key), so
tokens with made-up key ids cannot make the gateway hammer the provider. Fetches run in a
worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt

from aorta.auth.principal import Principal, parse_roles
from aorta.errors import Unauthenticated, Unavailable
from aorta.logger import get_logger
from aorta.settings import redact_uri

log = get_logger(__name__)

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""The signature algorithms a token may use: public-key ones only."""

LEEWAY_SECONDS = 30.0
"""Clock difference tolerated between the provider and this host for `exp` and `nbf`."""

_JWKS_CACHE_SECONDS = 300.0
_JWKS_FETCH_TIMEOUT = 10.0


class _KeySource:
    """The provider's public keys, from a JWKS file (re-read when it changes) or URL."""

    def __init__(self, jwks: str) -> None:
        self.jwks = jwks
        self._client: jwt.PyJWKClient | None = None
        self._file: Path | None = None
        self._file_seen: tuple[int, int, int] | None = None
        self._file_keys: jwt.PyJWKSet | None = None
        if jwks.startswith(("http://", "https://")):
            self._client = jwt.PyJWKClient(
                jwks,
                cache_jwk_set=True,
                lifespan=_JWKS_CACHE_SECONDS,
                timeout=_JWKS_FETCH_TIMEOUT,
            )
        else:
            self._file = Path(jwks).expanduser()
            self._keys_from_file()

    def _keys_from_file(self) -> jwt.PyJWKSet:
        assert self._file is not None
        try:
            status = self._file.stat()
            seen = (status.st_mtime_ns, status.st_size, status.st_ino)
            if self._file_keys is None or seen != self._file_seen:
                self._file_keys = jwt.PyJWKSet.from_json(self._file.read_text())
                self._file_seen = seen
        except (OSError, ValueError, jwt.PyJWTError) as exc:
            raise Unavailable(
                f"the OIDC key set {self._file} cannot be read: {_reason(exc)}"
            ) from exc
        return self._file_keys

    def key(self, kid: str | None) -> jwt.PyJWK | None:
        """The signing key named `kid` (the only key, when the token names none); None when
        there is no such key. May block on the network: call it in a thread."""
        if self._client is None:
            keys = self._keys_from_file().keys
        else:
            try:
                if kid is None:
                    keys = self._fetch(self._client.get_signing_keys)
                else:
                    keys = [self._fetch(self._client.get_signing_key, kid)]
            except (jwt.PyJWKClientError, jwt.PyJWKSetError) as exc:
                log.info("oidc_key_not_found", jwks=redact_uri(self.jwks), reason=str(exc)[:200])
                return None
        # A symmetric ("oct") key in the set would let whoever knows it mint tokens; skip it.
        signing = [
            key for key in keys if key.public_key_use in ("sig", None) and key.key_type != "oct"
        ]
        if kid is None:
            return signing[0] if len(signing) == 1 else None
        return next((key for key in signing if key.key_id == kid), None)

    def _fetch(self, call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except jwt.PyJWKClientConnectionError as exc:
            log.warning(
                "oidc_keys_unreachable", jwks=redact_uri(self.jwks), reason=redact_uri(str(exc))
            )
            raise Unavailable(
                "the platform cannot fetch its identity provider's keys now; try again later"
            ) from exc


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


class OidcVerifier:
    """Checks JWTs of one issuer and audience and says who they name.

    `jwks` is a path to a JWKS JSON file or an http(s) URL; `roles_claim` names the claim that
    lists the caller's roles (a list, or a space-separated string; a dotted name such as
    `realm_access.roles` reads a nested claim).
    """

    def __init__(self, issuer: str, audience: str, jwks: str, roles_claim: str = "roles") -> None:
        self.issuer = issuer
        self.audience = audience
        self.roles_claim = roles_claim
        self._keys = _KeySource(jwks)

    async def verify(self, token: str) -> Principal:
        """The principal `token` names, once its signature, `exp`, `nbf`, `iss` and `aud` check
        out (30 s of leeway on times).

        Raises `Unauthenticated` with a reason a person can act on (never the token), or
        `Unavailable` when the provider's keys cannot be fetched.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated("the token is not a well-formed JWT") from exc
        algorithm = header.get("alg")
        if algorithm not in ASYMMETRIC_ALGORITHMS:
            raise Unauthenticated(
                f"the token's algorithm {str(algorithm)[:16]!r} is not accepted; "
                f"it must be signed with one of {', '.join(sorted(ASYMMETRIC_ALGORITHMS))}"
            )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise Unauthenticated("the token's key id (kid) is not a string")
        key = await asyncio.to_thread(self._keys.key, kid)
        if key is None:
            raise Unauthenticated(
                f"the token is signed with a key the identity provider does not publish "
                f"(kid {str(kid)[:64]!r})"
                if kid is not None
                else "the token names no key (kid) and the provider publishes several"
            )
        claims = self._decode(token, key.key, algorithm)
        return Principal(subject=str(claims["sub"]), roles=parse_roles(self._roles(claims)))

    def _decode(self, token: str, key: Any, algorithm: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("the token has expired; get a new one") from exc
        except jwt.ImmatureSignatureError as exc:
            raise Unauthenticated("the token is not valid yet (nbf is in the future)") from exc
        except jwt.InvalidAudienceError as exc:
            raise Unauthenticated(f"the token's audience is not {self.audience}") from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthenticated(f"the token's issuer is not {self.issuer}") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"the token has no {exc.claim} claim") from exc
        except (jwt.InvalidSignatureError, jwt.InvalidKeyError) as exc:
            raise Unauthenticated("the token's signature does not check out") from exc
        except jwt.DecodeError as exc:
            raise Unauthenticated("the token is not a well-formed JWT") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"the token is not valid ({type(exc).__name__})") from exc
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise Unauthenticated("the token's sub claim must be a non-empty string")
        return claims

    def _roles(self, claims: Mapping[str, Any]) -> list[str]:
        value: Any = claims
        for part in self.roles_claim.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, str):
            return value.split()
        if isinstance(value, list):
            return [item for item in value if isinstance(item, str)]
        return []
