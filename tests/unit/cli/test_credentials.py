"""Where the CLI's TLS and token come from, and when it refuses to send a token."""

from __future__ import annotations

from pathlib import Path

import pytest

from aorta.cli.connection import Target, resolve_target
from aorta.cli.credentials import ChannelSecurity, is_loopback, refuse_clear_token
from aorta.cli.failures import UsageFailure


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return tmp_path / "conf" / "config.yaml"


def _environ(config: Path, **variables: str) -> dict[str, str]:
    return {"AORTA_CONFIG": str(config), **variables}


def test_nothing_configured_means_plain_and_anonymous(config: Path) -> None:
    security = resolve_target(None, _environ(config)).security
    assert security == ChannelSecurity()
    assert not security.tls


def test_the_ca_comes_from_the_flag_then_the_environment_then_the_config_file(
    config: Path,
) -> None:
    config.parent.mkdir()
    config.write_text("ca: certs/ca.pem\n")
    environ = _environ(config, AORTA_CA="/env/ca.pem")
    assert resolve_target(None, environ, ca="/flag/ca.pem").security.ca == Path("/flag/ca.pem")
    assert resolve_target(None, environ).security.ca == Path("/env/ca.pem")
    from_file = resolve_target(None, _environ(config)).security
    assert from_file.ca == config.parent / "certs" / "ca.pem"
    assert from_file.tls
    assert resolve_target(None, environ, ca="system").security.ca == "system"


def test_the_token_comes_from_the_environment_then_a_file_then_the_config(
    config: Path, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("aorta_from-file\n")
    config.parent.mkdir()
    config.write_text("token: aorta_from-config\n")
    both = _environ(config, AORTA_TOKEN="aorta_from-env", AORTA_TOKEN_FILE=str(token_file))
    assert resolve_target(None, both).security.token == "aorta_from-env"
    from_file = resolve_target(None, _environ(config, AORTA_TOKEN_FILE=str(token_file)))
    assert from_file.security.token == "aorta_from-file"
    assert from_file.security.token_source == "AORTA_TOKEN_FILE"
    assert resolve_target(None, _environ(config)).security.token == "aorta_from-config"
    (config.parent / "tok").write_text("aorta_beside-config")
    config.write_text("token_file: tok\n")
    assert resolve_target(None, _environ(config)).security.token == "aorta_beside-config"


def test_the_token_never_shows_in_a_repr(config: Path) -> None:
    target = resolve_target(None, _environ(config, AORTA_TOKEN="aorta_secret-value"))
    assert "aorta_secret-value" not in repr(target)


def test_an_unreadable_token_file_is_a_usage_failure(config: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageFailure, match="AORTA_TOKEN_FILE: cannot read"):
        resolve_target(None, _environ(config, AORTA_TOKEN_FILE=str(tmp_path / "absent")))
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(UsageFailure, match="holds no token"):
        resolve_target(None, _environ(config, AORTA_TOKEN_FILE=str(empty)))


def test_a_client_certificate_needs_its_key_and_tls(config: Path) -> None:
    with pytest.raises(UsageFailure, match="needs both"):
        resolve_target(None, _environ(config, AORTA_CLIENT_CERT="c.pem", AORTA_CA="ca.pem"))
    with pytest.raises(UsageFailure, match="needs TLS"):
        resolve_target(None, _environ(config, AORTA_CLIENT_CERT="c.pem", AORTA_CLIENT_KEY="k"))
    mtls = resolve_target(
        None, _environ(config, AORTA_CLIENT_CERT="c.pem", AORTA_CLIENT_KEY="k", AORTA_CA="ca")
    ).security
    assert (mtls.client_cert, mtls.client_key) == (Path("c.pem"), Path("k"))


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1:30031", True),
        ("127.5.0.1:1", True),
        ("localhost:30031", True),
        ("[::1]:30031", True),
        ("10.0.0.5:30031", False),
        ("gpu-box.example.org:30031", False),
    ],
)
def test_loopback_addresses_are_recognised(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_a_token_is_not_sent_in_clear_beyond_loopback() -> None:
    security = ChannelSecurity(token="aorta_x", token_source="AORTA_TOKEN")
    refuse_clear_token(security, "127.0.0.1:30031")
    refuse_clear_token(ChannelSecurity(ca=Path("ca.pem"), token="aorta_x"), "10.0.0.5:30031")
    refuse_clear_token(ChannelSecurity(), "10.0.0.5:30031")
    with pytest.raises(UsageFailure, match="refusing to send the token \\(AORTA_TOKEN\\)"):
        refuse_clear_token(security, "10.0.0.5:30031")


def test_a_target_made_by_hand_is_plain() -> None:
    assert not Target("127.0.0.1:1", "test").security.tls
