"""The authenticator: one bearer header, routed to the tokens file or to OIDC."""

from __future__ import annotations

from pathlib import Path

import pytest

from aorta.auth.authenticator import Authenticator, bearer_token, build_authenticator
from aorta.auth.oidc import OidcVerifier
from aorta.auth.principal import Principal, Role
from aorta.auth.tokens import TokenFile, create_token
from aorta.errors import Forbidden, Invalid, Unauthenticated, Unavailable
from aorta.settings import Settings
from aorta.testing.oidc import DEFAULT_AUDIENCE, DEFAULT_ISSUER, IdentityProvider


@pytest.mark.parametrize(
    "metadata",
    [
        [("authorization", "Bearer aorta_abc")],
        [("Authorization", "bearer aorta_abc")],
        [("x-other", "1"), ("authorization", "BEARER   aorta_abc  ")],
        [("authorization", b"Bearer aorta_abc")],
    ],
)
def test_the_bearer_token_is_read_whatever_the_case_of_the_scheme(
    metadata: list[tuple[str, str | bytes]],
) -> None:
    assert bearer_token(metadata) == "aorta_abc"


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [
        ([], "requires a token: send the header `authorization: Bearer <token>`"),
        ([("authorization", "Basic dXNlcjpwYXNz")], "not a bearer token"),
        ([("authorization", "Bearer ")], "holds no token"),
        ([("authorization", "Bearer")], "holds no token"),
        ([("authorization", "Bearer a"), ("authorization", "Bearer b")], "2 authorization"),
    ],
)
def test_a_missing_or_malformed_header_is_unauthenticated(
    metadata: list[tuple[str, str | bytes]], problem: str
) -> None:
    with pytest.raises(Unauthenticated, match=problem):
        bearer_token(metadata)


@pytest.fixture
def provider(tmp_path: Path) -> IdentityProvider:
    return IdentityProvider(tmp_path)


@pytest.fixture
def tokens_path(tmp_path: Path) -> Path:
    return tmp_path / "tokens.yaml"


@pytest.fixture
def both(provider: IdentityProvider, tokens_path: Path) -> Authenticator:
    oidc = OidcVerifier(DEFAULT_ISSUER, DEFAULT_AUDIENCE, str(provider.jwks_path))
    return Authenticator(TokenFile(tokens_path), oidc)


def _bearer(token: str) -> list[tuple[str, str | bytes]]:
    return [("authorization", f"Bearer {token}")]


async def test_tokens_of_both_sources_are_accepted_together(
    both: Authenticator, provider: IdentityProvider, tokens_path: Path
) -> None:
    token = create_token(tokens_path, "ci", [Role.USER])
    assert await both.authenticate(_bearer(token)) == Principal("ci", frozenset({Role.USER}))
    jwt_token = provider.sign("alice", ["admin"])
    assert await both.authenticate(_bearer(jwt_token)) == Principal(
        "alice", frozenset({Role.ADMIN})
    )


async def test_an_unknown_token_is_unauthenticated(both: Authenticator) -> None:
    with pytest.raises(Unauthenticated, match="not known to this platform"):
        await both.authenticate(_bearer("aorta_made-up"))


async def test_a_bad_jwt_is_unauthenticated(
    both: Authenticator, provider: IdentityProvider
) -> None:
    with pytest.raises(Unauthenticated, match="expired"):
        await both.authenticate(_bearer(provider.sign("alice", expires_in=-300)))


async def test_a_token_with_no_known_role_is_refused(
    both: Authenticator, provider: IdentityProvider
) -> None:
    with pytest.raises(Forbidden, match="alice holds no Aorta role: its token's 'roles' claim"):
        await both.authenticate(_bearer(provider.sign("alice", ["other-app"])))


async def test_a_source_that_is_not_configured_says_which_one_is(
    provider: IdentityProvider, tokens_path: Path
) -> None:
    tokens_only = Authenticator(TokenFile(tokens_path))
    with pytest.raises(Unauthenticated, match="accepts no OpenID Connect tokens"):
        await tokens_only.authenticate(_bearer(provider.sign("alice")))
    oidc_only = Authenticator(
        oidc=OidcVerifier(DEFAULT_ISSUER, DEFAULT_AUDIENCE, str(provider.jwks_path))
    )
    with pytest.raises(Unauthenticated, match="OpenID Connect tokens \\(JWTs\\) only"):
        await oidc_only.authenticate(_bearer("aorta_xyz"))


@pytest.fixture
def broken_tokens_file(tokens_path: Path) -> Path:
    tokens_path.write_text("tokens: {\n")
    return tokens_path


async def test_a_broken_tokens_file_refuses_without_naming_it(
    both: Authenticator, broken_tokens_file: Path
) -> None:
    with pytest.raises(Unavailable) as caught:
        await both.authenticate(_bearer("aorta_xyz"))
    assert str(broken_tokens_file) not in str(caught.value)


def test_no_authenticator_when_auth_is_off() -> None:
    assert build_authenticator(Settings.from_env({})) is None


def test_the_settings_choose_the_sources(provider: IdentityProvider, tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "AORTA_AUTH_TOKENS_FILE": str(tmp_path / "t.yaml"),
            "AORTA_OIDC_ISSUER": DEFAULT_ISSUER,
            "AORTA_OIDC_AUDIENCE": DEFAULT_AUDIENCE,
            "AORTA_OIDC_JWKS": str(provider.jwks_path),
        }
    )
    built = build_authenticator(settings, tokens_file=tmp_path / "ignored.yaml")
    assert built is not None
    assert built.tokens is not None
    assert built.tokens.path == tmp_path / "t.yaml"
    assert built.oidc is not None


def test_the_given_tokens_file_serves_when_the_setting_is_empty(tmp_path: Path) -> None:
    built = build_authenticator(Settings.from_env({"AORTA_AUTH": "true"}), tmp_path / "t.yaml")
    assert built is not None
    assert built.tokens is not None
    assert built.tokens.path == tmp_path / "t.yaml"
    assert built.oidc is None


def test_auth_without_any_source_is_a_settings_error() -> None:
    with pytest.raises(Invalid, match="no token source"):
        build_authenticator(Settings.from_env({"AORTA_AUTH": "true"}))


def test_oidc_needs_audience_and_keys() -> None:
    with pytest.raises(Invalid, match="AORTA_OIDC_AUDIENCE and AORTA_OIDC_JWKS"):
        build_authenticator(Settings.from_env({"AORTA_OIDC_ISSUER": DEFAULT_ISSUER}))
