"""A test identity provider: an RSA key, its JWKS file, and JWTs signed with it.

Tests (unit and end to end) point the gateway's OIDC settings at `jwks_path`, `issuer` and an
audience, then call `sign` for tokens, or `sign(..., key=IdentityProvider.new_key())` for one
the platform must refuse.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

DEFAULT_ISSUER = "https://idp.aorta.test"
DEFAULT_AUDIENCE = "aorta"
DEFAULT_KID = "aorta-test-key"


class IdentityProvider:
    """Signs JWTs with one RSA key and publishes its public half as a JWKS file."""

    def __init__(
        self, directory: Path, *, issuer: str = DEFAULT_ISSUER, kid: str = DEFAULT_KID
    ) -> None:
        self.issuer = issuer
        self.kid = kid
        self.key = self.new_key()
        self.jwks_path = directory / "jwks.json"
        self.jwks_path.write_text(json.dumps(self.jwks()))

    @staticmethod
    def new_key() -> rsa.RSAPrivateKey:
        """A fresh 2048-bit RSA key (also what a forger would sign with)."""
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        """The JWKS document of the provider's public key."""
        public = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        public.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return {"keys": [public]}

    def sign(
        self,
        subject: str,
        roles: Iterable[str] | str = ("user",),
        *,
        audience: str = DEFAULT_AUDIENCE,
        issuer: str | None = None,
        expires_in: float = 300,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
        algorithm: str = "RS256",
        roles_claim: str = "roles",
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """A JWT for `subject` with `roles` (a list, or a string as some providers send);
        signed with the provider's key unless `key` is given. A negative `expires_in` gives a
        token that has already expired."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer or self.issuer,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + int(expires_in),
            roles_claim: roles if isinstance(roles, str) else list(roles),
            **(extra or {}),
        }
        return jwt.encode(
            claims,
            key or self.key,
            algorithm=algorithm,
            headers={"kid": kid or self.kid},
        )
