"""The image cache's root filesystems: Debian bookworm's own `python3`, made once per host by
`debootstrap --variant=minbase` and kept as a tarball keyed by its recipe, and the helpers the
image builders share (recipe digests, cache locks, checked commands). `make setup` calls
`python_base_rootfs` as root, so the first test run does not pay for it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from aorta.logger import get_logger
from aorta.testing.podman import PodmanError

DEBIAN_MIRROR = "http://deb.debian.org/debian"
_DEBIAN_SUITE = "bookworm"
_DEBIAN_PACKAGES = ("python3",)

_log = get_logger(__name__)


def default_cache_dir() -> Path:
    """Where built root filesystems and wheels are kept between runs:
    `$AORTA_IMAGE_CACHE`, else `$XDG_CACHE_HOME/aorta/images` (`~/.cache/aorta/images`)."""
    override = os.environ.get("AORTA_IMAGE_CACHE")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "aorta" / "images"


def python_base_rootfs(cache_dir: Path | None = None, *, mirror: str = DEBIAN_MIRROR) -> Path:
    """The tarball of bookworm's minimal root filesystem with python3, built by debootstrap
    on the first call (root only) and kept in `cache_dir`, under a name keyed by its recipe.
    Concurrent callers (parallel test runs) wait for one build."""
    cache = cache_dir or default_cache_dir()
    recipe = digest(_DEBIAN_SUITE, mirror, *_DEBIAN_PACKAGES, "minbase", "python-link", "v1")
    tarball = cache / f"debian-{_DEBIAN_SUITE}-python3-{recipe[:16]}.tar"
    with cache_lock(cache / f"{tarball.name}.lock"):
        if not tarball.exists():
            _debootstrap(tarball, mirror)
    return tarball


def _debootstrap(tarball: Path, mirror: str) -> None:
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not Path(debootstrap).exists():
        raise PodmanError("debootstrap was not found: run `make setup`, which installs it")
    if os.geteuid() != 0:
        raise PodmanError(
            f"building the Python base image needs root (debootstrap); run it once as root, "
            f"or put a root filesystem tarball at {tarball}"
        )
    _log.info("building the Python base root filesystem (once per host)", tarball=str(tarball))
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="aorta-rootfs-", dir=tarball.parent) as temporary:
        root = Path(temporary) / "root"
        run_checked(
            [
                debootstrap,
                "--variant=minbase",
                f"--include={','.join(_DEBIAN_PACKAGES)}",
                _DEBIAN_SUITE,
                str(root),
                mirror,
            ]
        )
        # What only a package manager or a reader of manuals needs: a smaller image.
        for unneeded in (
            "var/cache/apt/archives",
            "var/lib/apt/lists",
            "usr/share/doc",
            "usr/share/man",
            "usr/share/locale",
        ):
            shutil.rmtree(root / unneeded, ignore_errors=True)
        (root / "usr/bin/python").symlink_to("python3")
        partial = tarball.with_suffix(".partial")
        run_checked(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."])
        partial.rename(tarball)


def digest(*parts: object) -> str:
    """A SHA-256 of `parts`, the recipe key of what is built from them."""
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part if isinstance(part, bytes) else repr(part).encode())
        hasher.update(b"\0")
    return hasher.hexdigest()


def run_checked(command: Sequence[str]) -> None:
    """Runs `command`; `PodmanError` with the tail of its output when it fails."""
    done = subprocess.run(command, capture_output=True, check=False)
    if done.returncode != 0:
        output = (done.stderr or done.stdout).decode(errors="replace").strip()[-2000:]
        raise PodmanError(f"{Path(command[0]).name} failed with status {done.returncode}", output)


@contextlib.contextmanager
def cache_lock(lock_file: Path) -> Iterator[None]:
    """Holds `lock_file` exclusively, so concurrent builders (parallel test runs) wait for one
    build of a cached item."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
