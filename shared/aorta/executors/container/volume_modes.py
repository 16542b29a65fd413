"""Who may use a run's folders: the modes a container user other than the platform's needs.

An image may run as any user (root without capabilities, or a uid of its own). It reaches the
run's volumes through their bind mounts only, never through the folders above them, so those
stay the platform's alone (0700) while inputs are readable by every user and output folders
writable by every user: no other user of the host can reach them through the run's folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from aorta.executors.port import OperatorRun
from aorta.executors.workspace import Workspace

PRIVATE_FOLDER_MODE = 0o700
INPUT_FOLDER_MODE = 0o755
INPUT_FILE_MODE = 0o644
OUTPUT_FOLDER_MODE = 0o777


def open_volumes(workspace: Workspace, run: OperatorRun) -> None:
    """Sets the modes a container user other than the platform's needs: inputs readable by
    all, outputs writable by all, the run's own folders the platform's alone (their owner
    reaches the volumes through the bind mounts, never through these folders). Raises
    `OSError`."""
    for folder in (workspace.folder.parent, workspace.folder):
        os.chmod(folder, PRIVATE_FOLDER_MODE)
    for binding in run.inputs:
        top = workspace.volume(binding.path)
        for parent, folders, files in os.walk(top):
            for name in files:
                _chmod_unless_link(Path(parent, name), INPUT_FILE_MODE)
            for name in folders:
                _chmod_unless_link(Path(parent, name), INPUT_FOLDER_MODE)
        os.chmod(top, INPUT_FOLDER_MODE)
    for binding in run.outputs:
        os.chmod(workspace.volume(binding.path), OUTPUT_FOLDER_MODE)


def _chmod_unless_link(path: Path, mode: int) -> None:
    if not path.is_symlink():
        os.chmod(path, mode)
