"""What a local tritonserver may reach: its user, its environment, the folders it reads.

Triton answers its whole API on loopback to any local process, and its load call accepts a
model's files, Python included, in the request. So a server started by a root platform runs as
an unprivileged user of its own, `AORTA_TRITON_RUN_AS` (default `aorta-triton`, which `make
setup` creates; `root` opts out with a warning), with no supplementary group: not the operators'
user, so an operator can neither signal nor trace it, and not one that can read the data dir.

Its environment is built from nothing: the install's `PATH` and `LD_LIBRARY_PATH`, its devices,
a `HOME` and `TMPDIR` of its own, and the few host variables in `HOST_VARIABLES`; no `AORTA_*`
nor any other variable of the platform, which may hold secrets.

Its working root then lies outside the data dir (`/var/tmp/aorta-triton-<platform uid>/`, the
platform's, 0711), and what the server reads there (the model repository and the backends) is
opened to it read-only: folders 0755, files 0644 (0755 when executable), owned by the platform,
so code it runs cannot rewrite a model.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from aorta.errors import Unavailable
from aorta.executors.local.operator_user import OperatorUser, resolve_operator_user
from aorta.logger import get_logger
from aorta.triton.local.install import TritonInstall

RUN_AS = "AORTA_TRITON_RUN_AS"
DEFAULT_RUN_AS = "aorta-triton"
"""The unprivileged user `make setup` creates for local Triton servers."""
HOST_VARIABLES = ("LANG", "LC_ALL", "TZ", "LD_LIBRARY_PATH")
"""The platform's variables a server keeps: locale, time zone, and where the host's (CUDA)
libraries are; none may hold a secret."""
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"

_log = get_logger(__name__)


def resolve_triton_user(setting: str, *, euid: int, egid: int) -> OperatorUser:
    """The user local Triton servers run as (see the module docstring and
    `resolve_operator_user`, whose errors it raises naming `AORTA_TRITON_RUN_AS`)."""
    user = resolve_operator_user(
        setting,
        euid=euid,
        egid=egid,
        setting_name=RUN_AS,
        default=DEFAULT_RUN_AS,
        runs="local Triton servers",
    )
    if euid == 0 and not user.switch:
        _log.warning(
            f"{RUN_AS} makes local Triton servers run as root: any local process, operators "
            "included, can have them run code of its own as root through their API"
        )
    return user


def server_environment(
    install: TritonInstall, devices: Mapping[str, str], home: Path, host: Mapping[str, str]
) -> dict[str, str]:
    """A tritonserver's whole environment: the install's paths, `devices`, `HOME` and `TMPDIR`
    in `home`, and the `HOST_VARIABLES` that `host` (the platform's environment) sets."""
    kept = {name: host[name] for name in HOST_VARIABLES if host.get(name)}
    base = kept | {"PATH": SYSTEM_PATH, "HOME": str(home), "TMPDIR": str(home)}
    return install.environment(base) | dict(devices)


def working_root(euid: int) -> Path:
    """`/var/tmp/aorta-triton-<euid>/`, made 0711 when missing; `Unavailable` when it exists
    but is not a folder this user owns that nobody else may write (someone may have made it
    first in the world-writable /var/tmp). Blocks for a moment."""
    root = Path(f"/var/tmp/aorta-triton-{euid}")
    with contextlib.suppress(FileExistsError):
        root.mkdir(mode=0o711)
    status = os.lstat(root)
    if not stat.S_ISDIR(status.st_mode) or status.st_uid != euid or status.st_mode & 0o022:
        raise Unavailable(
            f"local Triton servers cannot run: {root} must be a folder owned by uid {euid} that "
            "no one else may write; remove it and start again"
        )
    os.chmod(root, 0o711)
    return root


def open_to_server(path: Path) -> None:
    """Makes `path` and everything under it readable by all and writable by its owner only:
    folders 0755, files 0644, or 0755 when their owner may run them. Links are left alone.
    Blocks."""
    _open_one(path)
    for folder, folders, files in os.walk(path):
        for name in (*folders, *files):
            _open_one(Path(folder, name))


def make_home(folder: Path, user: OperatorUser | None) -> Path:
    """`folder`, made 0700 and owned by `user` when the platform switches to it: the servers'
    `HOME` and `TMPDIR`. Blocks."""
    folder.mkdir(mode=0o700, exist_ok=True)
    if user is not None and user.switch:
        os.chown(folder, user.uid, user.gid)
    return folder


def _open_one(path: Path) -> None:
    status = os.lstat(path)
    if stat.S_ISLNK(status.st_mode):
        return
    runnable = stat.S_ISDIR(status.st_mode) or status.st_mode & stat.S_IXUSR
    os.chmod(path, 0o755 if runnable else 0o644)
