"""`aorta token create|list|revoke`: the token is printed once and the file keeps its hash."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from aorta.auth.principal import Principal, Role
from aorta.auth.tokens import TokenFile, digest, read_tokens
from aorta.cli import register


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def _aorta(data_dir: Path, *args: str, **environ: str) -> Result:
    @click.group()
    def root() -> None:
        """aorta"""

    register(root)
    env = {"AORTA_DATA_DIR": str(data_dir), "AORTA_AUTH_TOKENS_FILE": "", **environ}
    return CliRunner().invoke(root, list(args), env=env)


def test_create_prints_the_token_once_and_the_file_holds_only_its_hash(data_dir: Path) -> None:
    result = _aorta(data_dir, "token", "create", "ci-robot", "--role", "user")
    assert result.exit_code == 0, result.stderr

    token = result.stdout.strip()
    assert token.startswith("aorta_")
    assert result.stdout.count(token) == 1
    assert token not in result.stderr
    path = data_dir / "tokens.yaml"
    assert f"recorded ci-robot (user) in {path}" in result.stderr
    assert "export AORTA_TOKEN=" in result.stderr
    text = path.read_text()
    assert token not in text
    assert digest(token) in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert TokenFile(path).lookup(token) == Principal("ci-robot", frozenset({Role.USER}))


def test_create_as_json_and_in_a_named_file(tmp_path: Path, data_dir: Path) -> None:
    path = tmp_path / "elsewhere.yaml"
    result = _aorta(
        data_dir,
        "token",
        "create",
        "boss",
        "--role",
        "admin",
        "--role",
        "viewer",
        "--json",
        AORTA_AUTH_TOKENS_FILE=str(path),
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["roles"] == ["viewer", "admin"]
    assert document["tokens_file"] == str(path)
    assert TokenFile(path).lookup(document["token"]) is not None


def test_a_taken_name_is_a_usage_error_until_replaced(data_dir: Path) -> None:
    first = _aorta(data_dir, "token", "create", "ci", "--role", "user").stdout.strip()
    again = _aorta(data_dir, "token", "create", "ci", "--role", "admin")
    assert again.exit_code == 2
    assert "already has a token named ci" in again.stderr
    replaced = _aorta(data_dir, "token", "create", "ci", "--role", "admin", "--replace")
    assert replaced.exit_code == 0
    tokens = TokenFile(data_dir / "tokens.yaml")
    assert tokens.lookup(first) is None
    assert tokens.lookup(replaced.stdout.strip()) == Principal("ci", frozenset({Role.ADMIN}))


def test_an_unknown_role_is_a_usage_error(data_dir: Path) -> None:
    result = _aorta(data_dir, "token", "create", "x", "--role", "root")
    assert result.exit_code == 2


def test_list_shows_names_roles_and_times_never_hashes(data_dir: Path) -> None:
    _aorta(data_dir, "token", "create", "alice", "--role", "user")
    _aorta(data_dir, "token", "create", "bob", "--role", "viewer")
    hashes = [entry.sha256 for entry in read_tokens(data_dir / "tokens.yaml")]

    listed = _aorta(data_dir, "token", "list")
    assert listed.exit_code == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ROLES", "CREATED"]
    assert [line.split()[:2] for line in lines[1:]] == [["alice", "user"], ["bob", "viewer"]]
    assert not any(value in listed.stdout for value in hashes)

    as_json = json.loads(_aorta(data_dir, "token", "list", "--json").stdout)
    assert [(item["name"], item["roles"]) for item in as_json] == [
        ("alice", ["user"]),
        ("bob", ["viewer"]),
    ]
    assert all(set(item) == {"name", "roles", "created"} for item in as_json)


def test_revoke_removes_the_token_and_an_unknown_name_is_not_found(data_dir: Path) -> None:
    token = _aorta(data_dir, "token", "create", "alice", "--role", "user").stdout.strip()
    revoked = _aorta(data_dir, "token", "revoke", "alice")
    assert revoked.exit_code == 0, revoked.stderr
    assert TokenFile(data_dir / "tokens.yaml").lookup(token) is None

    again = _aorta(data_dir, "token", "revoke", "alice")
    assert again.exit_code == 3
    assert "no token named alice" in again.stderr
