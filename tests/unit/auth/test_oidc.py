"""OIDC JWTs: accepted when signed by the provider for this audience and issuer, refused with
a reason otherwise, and never by a trick of algorithms."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from aorta.auth.oidc import OidcVerifier
from aorta.auth.principal import Principal, Role
from aorta.errors import Unauthenticated, Unavailable
from aorta.testing.oidc import DEFAULT_AUDIENCE, DEFAULT_ISSUER, IdentityProvider


@pytest.fixture
def provider(tmp_path: Path) -> IdentityProvider:
    return IdentityProvider(tmp_path)


@pytest.fixture
def verifier(provider: IdentityProvider) -> OidcVerifier:
    return OidcVerifier(DEFAULT_ISSUER, DEFAULT_AUDIENCE, str(provider.jwks_path))


def _segment(document: dict[str, object] | bytes) -> str:
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def _refused(verifier: OidcVerifier, token: str) -> str:
    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(token)
    message = str(caught.value)
    assert token not in message
    return message


async def test_a_good_token_names_its_subject_and_roles(
    provider: IdentityProvider, verifier: OidcVerifier
) -> None:
    token = provider.sign("alice@example.org", ["user", "other-app-role"])
    assert await verifier.verify(token) == Principal("alice@example.org", frozenset({Role.USER}))


async def test_roles_may_come_as_a_space_separated_string(
    provider: IdentityProvider, verifier: OidcVerifier
) -> None:
    token = provider.sign("bob", "viewer admin")
    assert (await verifier.verify(token)).roles == {Role.VIEWER, Role.ADMIN}


async def test_a_nested_roles_claim_is_read_by_its_dotted_name(
    provider: IdentityProvider,
) -> None:
    verifier = OidcVerifier(
        DEFAULT_ISSUER, DEFAULT_AUDIENCE, str(provider.jwks_path), "realm_access.roles"
    )
    token = provider.sign("carol", [], extra={"realm_access": {"roles": ["admin"]}})
    assert (await verifier.verify(token)).roles == {Role.ADMIN}


async def test_a_token_without_roles_names_no_role(
    provider: IdentityProvider, verifier: OidcVerifier
) -> None:
    assert (await verifier.verify(provider.sign("dave", []))).roles == frozenset()


async def test_an_expired_token_is_refused(
    provider: IdentityProvider, verifier: OidcVerifier
) -> None:
    message = await _refused(verifier, provider.sign("alice", expires_in=-120))
    assert message == "the token has expired; get a new one"


async def test_a_token_just_past_its_expiry_is_within_the_leeway(
    provider: IdentityProvider, verifier: OidcVerifier
) -> None:
    assert (await verifier.verify(provider.sign("alice", expires_in=-5))).subject == "alice"


async def test_a_token_for_another_audience_is_refused(
    provider: IdentityProvider, verifier: OidcVerifier
) -> None:
    message = await _refused(verifier, provider.sign("alice", audience="grafana"))
    assert message == "the token's audience is not aorta"


async def test_a_token_of_another_issuer_is_refused(
    provider: IdentityProvider, verifier: OidcVerifier
) -> None:
    message = await _refused(verifier, provider.sign("alice", issuer="https://evil.test"))
    assert message == f"the token's issuer is not {DEFAULT_ISSUER}"


async def test_a_token_signed_with_another_key_is_refused(
    provider: IdentityProvider, verifier: OidcVerifier
) -> None:
    forged = provider.sign("mallory", ["admin"], key=IdentityProvider.new_key())
    assert await _refused(verifier, forged) == "the token's signature does not check out"


async def test_a_token_naming_an_unknown_key_is_refused(
    provider: IdentityProvider, verifier: OidcVerifier
) -> None:
    message = await _refused(verifier, provider.sign("alice", kid="rotated-away"))
    assert "a key the identity provider does not publish" in message


async def test_an_unsigned_token_is_refused(
    provider: IdentityProvider, verifier: OidcVerifier
) -> None:
    claims = jwt.decode(provider.sign("mallory", ["admin"]), options={"verify_signature": False})
    unsigned = f"{_segment({'alg': 'none', 'typ': 'JWT', 'kid': provider.kid})}.{_segment(claims)}."
    message = await _refused(verifier, unsigned)
    assert "algorithm 'none' is not accepted" in message


async def test_hs256_signed_with_the_public_key_is_refused(
    provider: IdentityProvider, verifier: OidcVerifier
) -> None:
    claims = jwt.decode(provider.sign("mallory", ["admin"]), options={"verify_signature": False})
    public_pem = provider.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{_segment({'alg': 'HS256', 'kid': provider.kid})}.{_segment(claims)}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    confused = f"{signing_input}.{_segment(signature)}"
    assert "algorithm 'HS256' is not accepted" in await _refused(verifier, confused)


async def test_a_token_without_a_subject_is_refused(
    provider: IdentityProvider, verifier: OidcVerifier
) -> None:
    token = jwt.encode(
        {"iss": DEFAULT_ISSUER, "aud": DEFAULT_AUDIENCE, "exp": 4102444800, "roles": ["admin"]},
        provider.key,
        algorithm="RS256",
        headers={"kid": provider.kid},
    )
    assert await _refused(verifier, token) == "the token has no sub claim"


async def test_garbage_is_not_a_jwt(verifier: OidcVerifier) -> None:
    assert await _refused(verifier, "abc.def.ghi") == "the token is not a well-formed JWT"


async def test_a_rotated_key_file_is_read_again(
    provider: IdentityProvider, verifier: OidcVerifier, tmp_path: Path
) -> None:
    await verifier.verify(provider.sign("alice"))
    rotated = IdentityProvider(tmp_path, kid="next-key")
    assert (await verifier.verify(rotated.sign("alice"))).subject == "alice"
    await _refused(verifier, provider.sign("alice"))


@pytest.fixture
def jwks_url(provider: IdentityProvider) -> Iterator[str]:
    body = provider.jwks_path.read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            """Quiet: the test's output is not the place for access logs."""

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    server.shutdown()
    server.server_close()
    thread.join()


async def test_keys_are_fetched_from_a_jwks_url(provider: IdentityProvider, jwks_url: str) -> None:
    verifier = OidcVerifier(DEFAULT_ISSUER, DEFAULT_AUDIENCE, jwks_url)
    assert (await verifier.verify(provider.sign("erin", ["viewer"]))).roles == {Role.VIEWER}
    forged = provider.sign("mallory", ["admin"], key=IdentityProvider.new_key())
    await _refused(verifier, forged)
    await _refused(verifier, provider.sign("erin", kid="unknown"))


async def test_an_unreachable_jwks_url_is_unavailable_not_a_bad_token(
    provider: IdentityProvider,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    verifier = OidcVerifier(DEFAULT_ISSUER, DEFAULT_AUDIENCE, f"http://127.0.0.1:{closed}/jwks")
    with pytest.raises(Unavailable, match="cannot fetch its identity provider's keys"):
        await verifier.verify(provider.sign("erin"))
