"""The tokens file: tokens are shown once, stored as digests, and take effect without a restart."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from aorta.auth.principal import Principal, Role
from aorta.auth.tokens import (
    TOKEN_PREFIX,
    TokenFile,
    TokensFileInvalid,
    create_token,
    default_data_dir,
    default_tokens_file,
    digest,
    read_tokens,
    revoke_token,
)
from aorta.errors import Invalid, NotFound


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_created_token_is_returned_once_and_the_file_holds_only_its_digest(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state" / "tokens.yaml"
    token = create_token(path, "ci-robot", [Role.USER])

    assert token.startswith(TOKEN_PREFIX)
    assert len(token) > len(TOKEN_PREFIX) + 40
    text = path.read_text()
    assert token not in text
    assert token.removeprefix(TOKEN_PREFIX) not in text
    (entry,) = yaml.safe_load(text)["tokens"]
    assert entry["name"] == "ci-robot"
    assert entry["sha256"] == digest(token)
    assert entry["roles"] == ["user"]
    assert entry["created"].endswith("Z")


def test_the_file_is_0600_and_a_folder_it_makes_is_0700(tmp_path: Path) -> None:
    path = tmp_path / "new" / "tokens.yaml"
    create_token(path, "a", [Role.VIEWER])
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    create_token(path, "b", [Role.VIEWER])
    assert _mode(path) == 0o600
    assert [entry.name for entry in read_tokens(path)] == ["a", "b"]


def test_a_name_is_taken_until_replaced_and_the_old_token_stops_working(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    old = create_token(path, "alice", [Role.USER])
    with pytest.raises(Invalid, match="already has a token named alice"):
        create_token(path, "alice", [Role.ADMIN])
    new = create_token(path, "alice", [Role.ADMIN], replace=True)

    tokens = TokenFile(path)
    assert tokens.lookup(old) is None
    assert tokens.lookup(new) == Principal("alice", frozenset({Role.ADMIN}))
    assert len(read_tokens(path)) == 1


@pytest.mark.parametrize("name", ["", "-x", "has space", "x" * 129, "a/b"])
def test_a_malformed_name_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(Invalid, match="token name"):
        create_token(tmp_path / "tokens.yaml", name, [Role.USER])


def test_a_token_needs_a_role(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="at least one role"):
        create_token(tmp_path / "tokens.yaml", "nobody", [])


def test_lookup_finds_each_token_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    viewer = create_token(path, "v", [Role.VIEWER])
    admin = create_token(path, "boss", [Role.ADMIN, Role.USER])
    tokens = TokenFile(path)

    assert tokens.lookup(viewer) == Principal("v", frozenset({Role.VIEWER}))
    assert tokens.lookup(admin) == Principal("boss", frozenset({Role.ADMIN, Role.USER}))
    assert tokens.lookup(viewer + "x") is None
    assert tokens.lookup(digest(viewer)) is None


def test_a_missing_file_holds_no_tokens(tmp_path: Path) -> None:
    assert TokenFile(tmp_path / "absent.yaml").lookup("aorta_anything") is None
    assert read_tokens(tmp_path / "absent.yaml") == []


def test_created_and_revoked_tokens_take_effect_without_a_new_reader(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    tokens = TokenFile(path)
    assert tokens.lookup("aorta_x") is None

    first = create_token(path, "first", [Role.USER])
    assert tokens.lookup(first) is not None
    second = create_token(path, "second", [Role.USER])
    assert tokens.lookup(second) is not None

    revoke_token(path, "first")
    assert tokens.lookup(first) is None
    assert tokens.lookup(second) is not None
    path.unlink()
    assert tokens.lookup(second) is None


def test_revoking_an_unknown_name_is_not_found(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    create_token(path, "kept", [Role.USER])
    with pytest.raises(NotFound, match="no token named gone"):
        revoke_token(path, "gone")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("tokens: [\n", "not valid YAML"),
        ("- just a list\n", "mapping with a `tokens:` list"),
        ("tokens:\n- name: a\n  sha256: xyz\n  roles: [user]\n", "64 lowercase hex"),
        (f"tokens:\n- name: a\n  sha256: '{'0' * 64}'\n  roles: [root]\n", "unknown roles root"),
        (
            f"tokens:\n- {{name: a, sha256: '{'0' * 64}', roles: [user]}}\n"
            f"- {{name: a, sha256: '{'1' * 64}', roles: [user]}}\n",
            "names a more than once",
        ),
    ],
)
def test_a_malformed_file_is_an_error_naming_the_file(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(text)
    with pytest.raises(TokensFileInvalid) as caught:
        TokenFile(path).lookup("aorta_x")
    assert str(path) in str(caught.value)
    assert problem in str(caught.value)


def test_a_yaml_error_does_not_quote_the_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text("tokens:\n- name: a\n  sha256: aorta_pasted-by-mistake: [\n")
    with pytest.raises(TokensFileInvalid) as caught:
        read_tokens(path)
    assert "pasted-by-mistake" not in str(caught.value)


def test_the_default_tokens_file_lives_in_the_data_dir(tmp_path: Path) -> None:
    assert default_tokens_file({"AORTA_AUTH_TOKENS_FILE": str(tmp_path / "t.yaml")}) == (
        tmp_path / "t.yaml"
    )
    assert default_tokens_file({"AORTA_DATA_DIR": str(tmp_path)}) == tmp_path / "tokens.yaml"
    assert default_data_dir({"XDG_DATA_HOME": str(tmp_path)}) == tmp_path / "aorta"
    assert default_data_dir({}) == Path.home() / ".local" / "share" / "aorta"


@pytest.mark.parametrize("text", ["", "tokens:\n", "tokens: []\n"])
def test_an_empty_file_holds_no_tokens(tmp_path: Path, text: str) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(text)
    assert read_tokens(path) == []
