"""Container images built on this host, with no registry: busybox for shell operators and a
Python image for operators written with Aorta's SDK; pytest-agnostic (fixtures and
`make images` call it).

- **busybox**: a root folder holding Debian's static `/bin/busybox` and a link per applet,
  streamed as a tar into `podman import` (well under a second).
- **Python**: Debian bookworm's own `python3` (3.11), made by `debootstrap --variant=minbase`
  once and kept as a tarball in the image cache (`aorta.testing.rootfs`), keyed by its recipe;
  each storage imports it (a few seconds). Over it, `podman build` adds the SDK (the
  repository's `aorta` package and the `clara` compatibility packages, which need nothing
  outside the standard library) and, for an operator image, the wheels it needs, installed on
  the host with `uv pip install --target` for Python 3.11, and its scripts.

Every image carries the label `aorta.recipe`, a digest of what it was built from; a build whose
image already has that label does nothing, so builds are cheap to repeat.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from aorta.logger import get_logger
from aorta.testing.podman import REPO_ROOT, PodmanCli, PodmanError
from aorta.testing.rootfs import (
    cache_lock,
    default_cache_dir,
    digest,
    python_base_rootfs,
    run_checked,
)

RECIPE_LABEL = "aorta.recipe"
"""The label whose value is the digest of what an image was built from."""

PYTHON_BASE_IMAGE = "localhost/aorta/debian-python:bookworm"
"""Debian bookworm with python3 (3.11) and `python` linked to it; nothing else."""

PYTHON_SDK_IMAGE = "localhost/aorta/python-operator:latest"
"""The base image for operators written with Aorta's SDK (or Clara's `clara` API):
`python -m aorta.driver.app script.py` and plain `python3 script.py` both run in it."""

PYTHON_VERSION = "3.11"
"""bookworm's python3: the version operator wheels are installed for."""

_SITE_PACKAGES = f"/usr/local/lib/python{PYTHON_VERSION}/dist-packages"
_SDK_PACKAGES = (
    REPO_ROOT / "shared" / "aorta",
    REPO_ROOT / "compat" / "clara",
    REPO_ROOT / "compat" / "nvidia_clara_pipeline_driver",
)
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "local")
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_log = get_logger(__name__)


def image_recipe(podman: PodmanCli, name: str) -> str | None:
    """The `aorta.recipe` label of the image `name` in `podman`'s storage; None when there
    is no such image or it has no such label."""
    try:
        found = podman.run(
            "image", "inspect", "--format", f'{{{{index .Labels "{RECIPE_LABEL}"}}}}', name
        ).strip()
    except PodmanError:
        return None
    return found if found and found != "<no value>" else None


def build_busybox_image(
    podman: PodmanCli,
    name: str,
    entrypoint_script: str | None = None,
    *,
    files: Mapping[str, str | bytes] | None = None,
) -> str:
    """Builds (unless already built from the same recipe) a busybox image named `name` and
    returns `name`.

    The image has busybox's applets in `/bin`, `PATH` set, a world-writable `/tmp`, and
    `files` (absolute container path to content, mode 0755). With `entrypoint_script`, that
    script is `/entrypoint.sh`, the entrypoint is `["/bin/sh", "/entrypoint.sh"]` and there is
    no command, so a container's command becomes the script's arguments; without it the image
    has no entrypoint and runs `sh` unless given a command. Busybox is Debian's static build
    (`busybox-static`).
    """
    busybox = _static_busybox()
    extra = dict(files or {})
    if entrypoint_script is not None:
        extra["/entrypoint.sh"] = entrypoint_script
    recipe = digest(busybox.read_bytes(), *sorted(extra.items()))
    if image_recipe(podman, name) == recipe:
        return name
    changes = [f"ENV PATH={_PATH}", f"LABEL {RECIPE_LABEL}={recipe}"]
    if entrypoint_script is None:
        changes.append('CMD ["sh"]')
    else:
        changes.append('ENTRYPOINT ["/bin/sh", "/entrypoint.sh"]')
    root = _busybox_root(busybox, extra)
    replaced = _image_id(podman, name)
    podman.run("import", *_changes(changes), "-", name, input=root)
    _remove_replaced(podman, replaced)
    _log.info("built a busybox image", image=name)
    return name


def build_python_sdk_image(podman: PodmanCli, *, cache_dir: Path | None = None) -> str:
    """Builds (unless up to date) `PYTHON_SDK_IMAGE`, over `PYTHON_BASE_IMAGE`, and returns its
    name. The first build on a host runs debootstrap (root only, about a minute, needs the
    Debian mirror); later ones reuse the cached root filesystem."""
    cache = cache_dir or default_cache_dir()
    base = import_python_base(podman, cache)
    with tempfile.TemporaryDirectory(prefix="aorta-image-") as temporary:
        context = Path(temporary)
        for package in _SDK_PACKAGES:
            shutil.copytree(package, context / "site" / package.name, ignore=_IGNORED)
        containerfile = (
            f'FROM {base}\nCOPY site/ {_SITE_PACKAGES}/\nENV PYTHONUNBUFFERED=1\nCMD ["python3"]\n'
        )
        _build(podman, PYTHON_SDK_IMAGE, context, containerfile)
    return PYTHON_SDK_IMAGE


def build_python_operator_image(
    podman: PodmanCli,
    name: str,
    *,
    files: Mapping[str, Path],
    requirements: Sequence[str] = (),
    entrypoint: Sequence[str] | None = None,
    workdir: str = "/app",
    cache_dir: Path | None = None,
) -> str:
    """Builds (unless up to date) an operator image named `name` over `PYTHON_SDK_IMAGE` and
    returns `name`: the wheels of `requirements` (pip requirement strings, installed on the host
    for Python 3.11 on manylinux x86_64), then `files` (absolute container path to a host
    file), with `entrypoint` (none when None: the definition's command must then say what runs)
    and `workdir`.
    """
    cache = cache_dir or default_cache_dir()
    base = build_python_sdk_image(podman, cache_dir=cache)
    if requirements:
        base = _python_wheels_image(podman, base, installed_requirements(requirements, cache))
    with tempfile.TemporaryDirectory(prefix="aorta-image-") as temporary:
        context = Path(temporary)
        lines = [f"FROM {base}"]
        for index, (target, source) in enumerate(sorted(files.items())):
            staged = context / "files" / str(index)
            staged.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, staged)
            lines.append(f"COPY files/{index} {target}")
        lines.append(f"WORKDIR {workdir}")
        if entrypoint is not None:
            lines.append(f"ENTRYPOINT {json.dumps(list(entrypoint))}")
        _build(podman, name, context, "\n".join(lines) + "\n")
    return name


def _python_wheels_image(podman: PodmanCli, base: str, site_packages: Path) -> str:
    """`base` with the installed wheels of `site_packages` (a cached folder named by its
    requirements): an image of its own, so operator images needing the same wheels share
    them."""
    name = f"localhost/aorta/python-wheels:{site_packages.name.removeprefix('site-packages-')}"
    containerfile = f"FROM {base}\nCOPY . {_SITE_PACKAGES}/\n"
    # The folder never changes once made: its name is its fingerprint.
    _build(podman, name, site_packages, containerfile, fingerprint=site_packages.name)
    return name


def tag_image(podman: PodmanCli, source: str, *names: str) -> None:
    """Gives the image `source` the further names `names` (e.g. a registry's,
    `nvcr.io/nvidia/clara/register-results:0.7.2-2010.1`), as `podman tag` does."""
    podman.run("tag", source, *names)


def import_python_base(podman: PodmanCli, cache: Path) -> str:
    """Imports (unless up to date) `PYTHON_BASE_IMAGE` into `podman`'s storage from the cached
    root filesystem (`python_base_rootfs`) and returns its name."""
    tarball = python_base_rootfs(cache)
    recipe = digest(tarball.name)
    if image_recipe(podman, PYTHON_BASE_IMAGE) != recipe:
        changes = [f"ENV PATH={_PATH}", f"LABEL {RECIPE_LABEL}={recipe}", 'CMD ["python3"]']
        replaced = _image_id(podman, PYTHON_BASE_IMAGE)
        podman.run("import", *_changes(changes), str(tarball), PYTHON_BASE_IMAGE)
        _remove_replaced(podman, replaced)
        _log.info("imported the Python base image", image=PYTHON_BASE_IMAGE, rootfs=str(tarball))
    return PYTHON_BASE_IMAGE


def installed_requirements(requirements: Sequence[str], cache: Path) -> Path:
    """A folder of `requirements` installed for Python 3.11 on manylinux x86_64, cached by
    the requirements themselves."""
    folder = cache / f"site-packages-{digest(PYTHON_VERSION, *sorted(requirements))[:16]}"
    with cache_lock(cache / f"{folder.name}.lock"):
        if not folder.exists():
            partial = folder.with_suffix(".partial")
            shutil.rmtree(partial, ignore_errors=True)
            run_checked(
                [
                    _uv(),
                    "pip",
                    "install",
                    "-q",
                    "--target",
                    str(partial),
                    "--python-version",
                    PYTHON_VERSION,
                    "--python-platform",
                    "x86_64-manylinux_2_28",
                    *requirements,
                ]
            )
            partial.rename(folder)
    return folder


def _uv() -> str:
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.exists() else shutil.which("uv")
    if found is None:
        raise PodmanError("uv was found neither beside the interpreter nor on PATH: make setup")
    return found


def _build(
    podman: PodmanCli,
    name: str,
    context: Path,
    containerfile: str,
    *,
    fingerprint: str | None = None,
) -> None:
    """`podman build` of `containerfile` in `context`, unless `name` was built from the same
    recipe: the Containerfile, the base image's recipe and `fingerprint`, or, without one, the
    digest of every file of `context`."""
    base = containerfile.split("\n", 1)[0].removeprefix("FROM ").strip()
    content = [fingerprint] if fingerprint is not None else list(_tree_digests(context))
    recipe = digest(containerfile, image_recipe(podman, base) or "", *content)
    if image_recipe(podman, name) == recipe:
        return
    replaced = _image_id(podman, name)
    with tempfile.TemporaryDirectory(prefix="aorta-containerfile-") as temporary:
        containerfile_path = Path(temporary) / "Containerfile"
        containerfile_path.write_text(f"{containerfile}LABEL {RECIPE_LABEL}={recipe}\n")
        # One layer over the base and no intermediate images, which would pile up nameless:
        # what several images share is an image of its own (the SDK's, the wheels').
        podman.run(
            *("build", "--quiet", "--pull=never", "--layers=false", "-t", name),
            *("-f", str(containerfile_path), str(context)),
        )
    _log.info("built an image", image=name)
    _remove_replaced(podman, replaced)


def _image_id(podman: PodmanCli, name: str) -> str | None:
    try:
        return podman.run("image", "inspect", "--format", "{{.Id}}", name).strip() or None
    except PodmanError:
        return None


def _remove_replaced(podman: PodmanCli, image_id: str | None) -> None:
    """Removes the image a build took the name of, so rebuilds do not pile up nameless images;
    kept when it still has another name, a child image or a container (podman then refuses)."""
    if image_id is not None:
        with contextlib.suppress(PodmanError):
            podman.run("rmi", image_id)


def _tree_digests(folder: Path) -> Iterator[str]:
    for path in sorted(folder.rglob("*")):
        relative = str(path.relative_to(folder))
        if path.is_symlink():
            yield f"{relative}->{os.readlink(path)}"
        elif path.is_file():
            yield f"{relative}:{hashlib.sha256(path.read_bytes()).hexdigest()}"


def _static_busybox() -> Path:
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        if Path(candidate).is_file():
            return Path(candidate)
    raise PodmanError("busybox was not found: run `make setup`, which installs busybox-static")


def _busybox_root(busybox: Path, files: Mapping[str, str | bytes]) -> bytes:
    """The image's root filesystem as an uncompressed tar, made in memory (about 2 MB)."""
    applets = subprocess.run(
        [str(busybox), "--list"], capture_output=True, check=True, text=True
    ).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777)):
            tar.addfile(_entry(folder, tarfile.DIRTYPE, mode))
        content = busybox.read_bytes()
        tar.addfile(
            _entry("bin/busybox", tarfile.REGTYPE, 0o755, len(content)), io.BytesIO(content)
        )
        for applet in applets:
            if applet != "busybox":
                link = _entry(f"bin/{applet}", tarfile.SYMTYPE, 0o777)
                link.linkname = "busybox"
                tar.addfile(link)
        for path, text in sorted(files.items()):
            data = text.encode() if isinstance(text, str) else text
            for parent in reversed(Path(path.lstrip("/")).parents[:-1]):
                tar.addfile(_entry(str(parent), tarfile.DIRTYPE, 0o755))
            tar.addfile(
                _entry(path.lstrip("/"), tarfile.REGTYPE, 0o755, len(data)), io.BytesIO(data)
            )
    return buffer.getvalue()


def _entry(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size = kind, mode, size
    return info


def _changes(changes: Sequence[str]) -> list[str]:
    return [argument for change in changes for argument in ("--change", change)]
