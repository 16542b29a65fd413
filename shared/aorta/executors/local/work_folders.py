"""Where local runs work, and who owns what there, so that an operator reaches its own run only.

    <work root>/                      0711, the platform's; never inside the data dir
      <job id>/                       0711, the platform's
        <operator>-<attempt>/         0711, the platform's: operator.log lies here, where the
                                      operator cannot swap it for a link to a file of the
                                      platform's that the platform would then read and store
          leader.status               0600, the operator's (its group leader writes it)
          volumes/                    0711, the platform's, as is every folder on the way to a
                                      declared path, so an operator cannot swap an output
                                      folder for a link to something the platform would store
            <declared path>/          0700, the operator's, and everything in it
          home/ tmp/                  0700, the operator's, and everything in them

The work root defaults to `/var/tmp/aorta-runs-<uid>/<platform key>`: outside the data dir
(0700, so an operator user could not enter it, and holding what operators must not read), on
disk rather than in memory (`/tmp` is a RAM-backed tmpfs on many systems and inputs can be
gigabytes), and passable by every user (`/var/tmp` is world-writable with the sticky bit, the
per-user folder 0711 like the root). The platform key (`platform_key`) is derived from the data
dir, so platforms of one user with different data dirs keep apart plans, outcome records and
workspaces, each executor's sweeps and listings seeing only its own platform's runs, while a
platform restarted on the same data dir finds its own again; folders of platforms gone are
removed (`aorta.executors.platform_folders`). The per-user folder is held to the
work root's own rules (the platform's, writable by no one else): another user who owned it, or
could write it, could swap the work root for a link after it was checked. Run folders stay
unlistable (0711) and are named by random job ids. Inputs are fetched while the platform still
owns every folder; the operator gets them afterwards, deepest first, so nothing it runs can
reshape a folder the platform is still walking.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from aorta.errors import Invalid
from aorta.executors.local.operator_user import OperatorUser
from aorta.executors.platform_folders import check_owned, platform_key
from aorta.executors.workspace import Workspace

PLATFORM_FOLDER_MODE = 0o711
"""Folders of the platform's that operators pass through without listing them."""
OPERATOR_FOLDER_MODE = 0o700
OPERATOR_FILE_MODE = 0o600
RUNS_PREFIX = "aorta-runs"
"""The name of the default work roots' per-user folder, before `-<uid>`."""
_SHARED_TEMP = Path("/var/tmp")


def default_work_root(data_dir: Path, *, prefix: str = RUNS_PREFIX) -> Path:
    """`/var/tmp/<prefix>-<effective uid>/<platform key of data_dir>` (the system's temp folder
    where there is no `/var/tmp`): the uid keeps platforms of different users apart, the key
    those of different data dirs. `Invalid` should that lie inside the data dir (a data dir of
    `/var/tmp` itself, say), where operators must not reach."""
    root = _user_folder(prefix) / platform_key(data_dir)
    data = Path(data_dir).resolve()
    if Path(os.path.realpath(root)).is_relative_to(data):
        raise Invalid(
            f"the default work dir {root} lies inside the data dir {data}: set "
            "AORTA_SCHEDULER_WORK_DIR to a folder outside it"
        )
    return root


def prepare_work_root(root: Path, user: OperatorUser) -> None:
    """Creates `root` (0711, and each missing folder on the way) and checks that it is safe and
    that `user` reaches it.

    `Invalid`, with what to do, when it is a link or not a folder, belongs to another user, is
    writable by others (another local user could plant runs or links there), when the default
    layout's per-user folder above it is any of those (module docstring), or when `user` cannot
    pass through it or one of its parents.
    """
    root = root.absolute()
    _make_folders(root)
    if root.parent == _user_folder(RUNS_PREFIX):
        check_owned(root.parent, f"the folder {root.parent} above the work dir")
    check_owned(root, f"the work dir {root}")
    blocked = user.first_blocked(root)
    if blocked is not None:
        raise Invalid(
            f"operators run as {user.name!r}, who cannot enter {blocked} on the way to the work "
            f"dir {root}: choose a work dir under a folder every user may pass through "
            "(AORTA_SCHEDULER_WORK_DIR), or chmod o+x that folder"
        )


def _make_folders(root: Path) -> None:
    """Creates `root` and the folders on the way that are missing, each 0711 (mkdir's mode is
    cut by the umask, and `parents=True` would make them by the umask alone)."""
    missing = [folder for folder in (root, *root.parents) if not os.path.lexists(folder)]
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PLATFORM_FOLDER_MODE)
        except FileExistsError:
            continue  # made meanwhile by another platform: checked below like any other
        os.chmod(folder, PLATFORM_FOLDER_MODE)


def _user_folder(prefix: str) -> Path:
    parent = _SHARED_TEMP if _SHARED_TEMP.is_dir() else Path(tempfile.gettempdir())
    return parent / f"{prefix}-{os.geteuid()}"


def hand_over(
    workspace: Workspace, user: OperatorUser, declared: Iterable[str] = (), *, fresh: bool = False
) -> None:
    """Gives the run's folders to `user` once its inputs are in (see the module docstring).

    Sets the modes of the platform's folders (the run's, `volumes/` and those on the way to each
    `declared` path), creates the group leader's status file, and changes the owner of each
    declared folder, `home/` and `tmp/` and all they hold, deepest first (links themselves,
    never what they point to). `fresh`: the folders were made a moment ago and nothing was put
    in them (no input fetched), so they are not walked. Raises `OSError`.
    """
    folder = workspace.folder
    platforms = {folder.parent: None, folder: None}  # ordered, each folder once
    operators = [workspace.home, workspace.tmp]
    for path in declared:
        parts = workspace.volume_parts(path)
        operators.append(folder.joinpath(*parts))
        for depth in range(1, len(parts)):
            platforms[folder.joinpath(*parts[:depth])] = None
    for platforms_folder in platforms:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(platforms_folder, PLATFORM_FOLDER_MODE)
    status = os.open(
        workspace.status_file,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
        OPERATOR_FILE_MODE,
    )
    os.close(status)
    _give(workspace.status_file, user, OPERATOR_FILE_MODE)
    for top in operators:
        # A missing folder is walked as an empty one (os.walk reports no error).
        for parent, folders, files in () if fresh else os.walk(top, topdown=False):
            for name in files:
                _give(Path(parent, name), user, OPERATOR_FILE_MODE)
            for name in folders:
                _give(Path(parent, name), user, OPERATOR_FOLDER_MODE)
        with contextlib.suppress(FileNotFoundError):
            _give(top, user, OPERATOR_FOLDER_MODE)


def _give(path: Path, user: OperatorUser, mode: int) -> None:
    if os.path.islink(path):
        return  # the platform creates none; and a link's own mode means nothing
    os.chmod(path, mode)
    if user.switch:
        os.chown(path, user.uid, user.gid, follow_symlinks=False)
