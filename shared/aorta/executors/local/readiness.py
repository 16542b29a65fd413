"""Whether host-process operators can run here: their user, the work root and what that user
must reach, checked when the local executor is made (and again before a run while they could
not), so a wrong setup fails every run with one message saying what to do instead of failing
each operator its own way. Nothing falls back to root (`aorta.executors.local.operator_user`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from aorta.errors import Invalid
from aorta.executors.local.operator_user import RUN_AS, OperatorUser, resolve_operator_user
from aorta.executors.local.process_group import LEADER_SCRIPT, NATIVE_LEADER, native_leader
from aorta.executors.local.work_folders import prepare_work_root
from aorta.logger import get_logger

_log = get_logger(__name__)


def operators_ready(run_as: str, work_root: Path, python_bin_dir: Path) -> OperatorUser:
    """The user operators run as (`run_as` when the platform is root), once `work_root` is
    prepared (`prepare_work_root`) and that user reaches the interpreter, the group leader and
    `python_bin_dir`; logs, once, how operators will run. Raises `AortaError` or `OSError`
    with what is wrong and what to do."""
    user = resolve_operator_user(run_as, euid=os.geteuid(), egid=os.getegid())
    prepare_work_root(work_root, user)
    _check_reachable(user, python_bin_dir)
    if user.switch:
        _log.info("operators run as an unprivileged user", user=user.name, uid=user.uid)
    elif os.geteuid() == 0:
        _log.warning(
            f"{RUN_AS} makes operators run as root: an operator can read and change "
            "everything the platform keeps"
        )
    else:
        _log.info("the platform is not root: operators run as its own user", uid=user.uid)
    if native_leader() is None:
        _log.info(
            "operators start under the Python group leader, tens of milliseconds slower "
            "each than the native one (`make setup` builds it; it must be changeable only "
            "by root or the platform's user)",
            native_leader=str(NATIVE_LEADER),
        )
    return user


def _check_reachable(user: OperatorUser, python_bin_dir: Path) -> None:
    interpreter = Path(sys.executable).resolve()
    blocked = (
        user.first_blocked(interpreter, access="run")
        or user.first_blocked(LEADER_SCRIPT, access="read")
        or user.first_blocked(python_bin_dir)
    )
    if blocked is not None:
        raise Invalid(
            f"operators run as {user.name!r}, who cannot reach {blocked}: the platform's "
            f"interpreter ({interpreter}), its packages and the folders on the way must be "
            "readable by that user (chmod o+x the folders on the way, or install Python and "
            "the platform where every user may read them)"
        )
