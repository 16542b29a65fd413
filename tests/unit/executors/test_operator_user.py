"""Which user operators run as, and what that user can reach, judged from mode bits."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

import pytest

from aorta.executors.local.operator_user import (
    OperatorUser,
    OperatorUserMissing,
    resolve_operator_user,
)
from aorta.settings import SettingsError

STRANGER = OperatorUser("stranger", 4321, 4321, switch=True)


def an_account() -> pwd.struct_passwd:
    return next(account for account in pwd.getpwall() if account.pw_uid != 0)


def status(uid: int, gid: int, mode: int) -> os.stat_result:
    return os.stat_result((stat.S_IFDIR | mode, 0, 0, 2, uid, gid, 0, 0, 0, 0))


def test_a_platform_that_is_not_root_runs_operators_as_itself() -> None:
    user = resolve_operator_user("aorta-no-such-user", euid=1000, egid=1000)
    assert (user.uid, user.gid, user.switch) == (1000, 1000, False)


def test_a_root_platform_switches_to_the_named_user_and_its_primary_group() -> None:
    account = an_account()
    user = resolve_operator_user(account.pw_name, euid=0, egid=0)
    assert user == OperatorUser(account.pw_name, account.pw_uid, account.pw_gid, switch=True)


def test_root_is_the_explicit_opt_out() -> None:
    user = resolve_operator_user("root", euid=0, egid=0)
    assert (user.uid, user.switch) == (0, False)


def test_numeric_ids_need_no_account_when_the_group_is_given() -> None:
    assert resolve_operator_user("54321:777", euid=0, egid=0) == OperatorUser(
        "54321", 54321, 777, switch=True
    )
    account = an_account()
    user = resolve_operator_user(str(account.pw_uid), euid=0, egid=0)
    assert (user.uid, user.gid) == (account.pw_uid, account.pw_gid)


def test_a_missing_user_names_the_setting_and_make_setup() -> None:
    with pytest.raises(OperatorUserMissing) as caught:
        resolve_operator_user("aorta-no-such-user", euid=0, egid=0)
    message = str(caught.value)
    assert "'aorta-no-such-user'" in message
    assert "AORTA_LOCAL_RUN_AS" in message
    assert "make setup" in message


@pytest.mark.parametrize(
    ("value", "error"),
    [("54321", "uid 54321 has no account"), ("op:1", "user name or uid"), ("1:x", "uid")],
)
def test_malformed_or_incomplete_values_are_settings_errors(value: str, error: str) -> None:
    with pytest.raises(SettingsError, match=error):
        resolve_operator_user(value, euid=0, egid=0)


def test_the_kernel_s_first_matching_class_decides() -> None:
    user = OperatorUser("u", 10, 20, switch=True)
    # Owner bits apply to the owner even when others are allowed more.
    assert not user.can_traverse(status(10, 99, 0o601))
    assert user.can_traverse(status(99, 20, 0o010))
    assert not user.can_traverse(status(99, 20, 0o701))  # group class matches and lacks x
    assert user.can_traverse(status(99, 99, 0o711))
    assert user.can_read(status(99, 99, 0o604))
    assert not user.can_read(status(99, 99, 0o600))


def test_the_first_folder_on_the_way_that_blocks_is_named(tmp_path: Path) -> None:
    private = tmp_path / "private"
    inner = private / "inner"
    inner.mkdir(parents=True)
    private.chmod(0o700)
    script = tmp_path / "script.py"
    script.write_text("")
    script.chmod(0o600)

    assert STRANGER.first_blocked(inner) == private
    assert STRANGER.first_blocked(script, access="read") == script
    script.chmod(0o644)
    assert STRANGER.first_blocked(script, access="read") is None
    assert STRANGER.first_blocked(script, access="run") == script
    private.chmod(0o711)
    assert STRANGER.first_blocked(inner) is None


def test_a_user_not_switched_to_reaches_what_the_platform_reaches(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    itself = OperatorUser("platform", 4321, 4321, switch=False)
    assert itself.first_blocked(private) is None
