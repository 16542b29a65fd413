"""Who host-process operators run as: never the platform's root, unless asked for explicitly.

A platform running as root (effective uid 0) starts every operator as the user
`AORTA_LOCAL_RUN_AS` names (default `aorta-operator`, which `make setup` creates), with that
user's primary group and no supplementary group. An operator then cannot read what the platform
keeps (its data dir is 0700), signal the platform's processes or open root's files. The value
`root` is the explicit opt-out. A platform that is not root has nothing to give up: its operators
run as its own user, whatever the setting says.

Folder permissions are judged from mode bits, owner and group only (POSIX ACLs are not read).
"""

from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from aorta.errors import Unavailable
from aorta.settings import SettingsError

RUN_AS = "AORTA_LOCAL_RUN_AS"
DEFAULT_RUN_AS = "aorta-operator"
"""The unprivileged user `make setup` creates for operators."""
ROOT_OPT_OUT = "root"


class OperatorUserMissing(Unavailable):
    """The user operators must run as does not exist on this machine."""


@dataclass(frozen=True)
class OperatorUser:
    """The uid and primary gid operators run as; `name` is for messages.

    `switch` says whether the platform changes to this user to start an operator (it runs as
    root and the user is not root); when False, operators run with the platform's own ids.
    """

    name: str
    uid: int
    gid: int
    switch: bool

    def can_traverse(self, folder: os.stat_result) -> bool:
        """Whether this user may pass through a folder with that status (its x bit)."""
        return _allowed(self, folder, stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH)

    def can_read(self, file: os.stat_result) -> bool:
        """Whether this user may read a file with that status (its r bit)."""
        return _allowed(self, file, stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH)

    def first_blocked(
        self, path: Path, *, access: Literal["enter", "read", "run"] = "enter"
    ) -> Path | None:
        """The first folder on the way to `path` (from `/`) that this user cannot pass through,
        or `path` itself when the user cannot `enter` it (a folder), `read` it or `run` it (a
        file); None when it can. A user the platform does not switch to reaches what the
        platform does. Raises `OSError` when a folder cannot be examined (`path` missing)."""
        if not self.switch:
            return None
        path = path.absolute()
        for folder in reversed(path.parents):
            if not self.can_traverse(os.stat(folder)):
                return folder
        status = os.stat(path)
        if access == "enter":
            allowed = self.can_traverse(status)
        elif access == "read":
            allowed = self.can_read(status)
        else:
            allowed = self.can_read(status) and self.can_traverse(status)
        return None if allowed else path


def resolve_operator_user(
    setting: str,
    *,
    euid: int,
    egid: int,
    setting_name: str = RUN_AS,
    default: str = DEFAULT_RUN_AS,
    runs: str = "operators",
) -> OperatorUser:
    """The user operators run as for a platform with effective ids `euid`/`egid`.

    `setting` is `AORTA_LOCAL_RUN_AS`: a user name, or `uid[:gid]` (the gid defaults to the
    user's primary group, so a uid with no account needs one). Ignored when `euid` is not 0.
    Raises `OperatorUserMissing` naming the setting and `make setup` when the user does not
    exist, and `SettingsError` for a malformed value. Another process the platform confines
    the same way (local Triton servers) passes its own `setting_name`, `default` user (empty
    `setting`) and `runs` (who, in messages).
    """
    if euid != 0:
        return OperatorUser(_name_of(euid), euid, egid, switch=False)
    text = setting.strip() or default
    uid_text, colon, gid_text = text.partition(":")
    if uid_text.isdigit() and (not colon or gid_text.isdigit()):
        uid = int(uid_text)
        gid = int(gid_text) if colon else _primary_group(uid, text, setting_name)
        return OperatorUser(_name_of(uid), uid, gid, switch=uid != 0)
    if colon:
        raise SettingsError(
            f"setting {setting_name}={setting!r} must be a user name or uid[:gid] in digits"
        )
    try:
        account = pwd.getpwnam(text)
    except KeyError:
        raise OperatorUserMissing(
            f"{runs} cannot run: the user {text!r} that {setting_name} names does not exist. "
            f"Run `make setup` (it creates {default}), create the user, or set {setting_name} "
            f"to an existing unprivileged user ({ROOT_OPT_OUT!r} runs {runs} as root)"
        ) from None
    return OperatorUser(text, account.pw_uid, account.pw_gid, switch=account.pw_uid != 0)


def _primary_group(uid: int, setting: str, setting_name: str) -> int:
    try:
        return pwd.getpwuid(uid).pw_gid
    except KeyError:
        raise SettingsError(
            f"setting {setting_name}={setting!r}: uid {uid} has no account, so give its group as "
            f"{uid}:GID"
        ) from None


def _name_of(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _allowed(
    user: OperatorUser, status: os.stat_result, owner: int, group: int, other: int
) -> bool:
    # The kernel uses the first class that matches: owner, then group, then others.
    if status.st_uid == user.uid:
        return bool(status.st_mode & owner)
    if status.st_gid == user.gid:
        return bool(status.st_mode & group)
    return bool(status.st_mode & other)
