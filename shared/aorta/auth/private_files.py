"""Files only the platform's user may read: tokens files, TLS keys.

A reader never sees half a file: content goes to a temporary file in the same folder, which
is then renamed over the old one. Folders are made `0700` and files `0600` whatever the umask.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIRECTORY_MODE = 0o700


def private_directory(path: Path) -> Path:
    """Makes `path` (and missing parents) and gives it mode `0700`; returns it."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIRECTORY_MODE)
    path.chmod(PRIVATE_DIRECTORY_MODE)
    return path


def write_private(path: Path, content: bytes) -> None:
    """Replaces `path` with `content` atomically, mode `0600`.

    A missing parent folder is made private (`0700`); an existing one is left as it is, since
    it may be shared on purpose (a mounted secret's folder, the user's home).
    """
    if not path.parent.is_dir():
        private_directory(path.parent)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as file:
            # mkstemp already makes 0600 files; chmod states it rather than relying on it.
            os.fchmod(file.fileno(), PRIVATE_FILE_MODE)
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
