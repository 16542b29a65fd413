"""The Aorta image itself (the repository's `Containerfile`), built with no registry:
`make image` and the container deployment test call `build_aorta_image`.

The base is `PYTHON_BASE_IMAGE` (Debian bookworm's python3, made locally by debootstrap,
`aorta.testing.rootfs`). The build context is prepared on the host: the pinned dependencies of
`pyproject.toml` installed from PyPI for Python 3.11 (cached by their pins, shared with the
operator images' wheels), the project's wheel built from the checkout and installed beside
them, the `aorta` command, and the host's Debian `nats-server` (a static binary), so NATS runs
from the same image. The image is labelled with the digest of all of it; a build whose image
already carries that label does nothing.

The image never writes bytecode (its root file system may be read-only), so without any a
container compiled every module it imports at each start: 3.3 to 4.2 s of CPU per service
before it served, a dozen times over for the container deployment test. The context therefore
carries the bytecode of the modules the services import, compiled on the host when its Python is
the image's (3.11), as unchecked-hash files that stay valid whatever time stamps the copy gives.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from aorta.logger import get_logger
from aorta.testing.images import (
    PYTHON_VERSION,
    RECIPE_LABEL,
    image_recipe,
    import_python_base,
    installed_requirements,
)
from aorta.testing.podman import REPO_ROOT, PodmanCli, PodmanError
from aorta.testing.rootfs import default_cache_dir, digest, run_checked

AORTA_IMAGE = "localhost/aorta:0.1.0"
"""The image's name; `deploy/` names it `aorta:0.1.0`, which podman resolves to this one."""

_SOURCES = ("pyproject.toml", "README.md", "shared", "services", "compat")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
_ENTRY = "#!/usr/bin/python3\nfrom aorta_services.launch.main import main\n\nmain()\n"
# Run by the host's interpreter with nothing but the standard library and the context's two
# folders on its path: imports what a service process imports, then writes the bytecode of each
# module it loaded from the context. Unchecked-hash files: the copy into the image does not keep
# every time stamp to the second, and a third of time-stamped files were stale there.
_PRECOMPILE = """\
import importlib, py_compile, sys
sys.dont_write_bytecode = True
roots = tuple(sys.argv[1:3])
sys.path[:0] = roots
from aorta_services.launch import main, registry
for module in (*registry.SERVICES.values(), *sys.argv[3:]):
    importlib.import_module(module)
mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
for module in list(sys.modules.values()):
    source = getattr(module, "__file__", None) or ""
    if source.endswith(".py") and source.startswith(roots):
        py_compile.compile(source, invalidation_mode=mode, doraise=True)
"""
_ADAPTERS = (
    "aorta.store.mongo",
    "aorta.store.sqlite",
    "aorta.blobs.s3",
    "aorta.executors.container.executor",
)

_log = get_logger(__name__)


def project_requirements() -> list[str]:
    """The pinned dependencies of the checkout's `pyproject.toml`."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return [str(requirement) for requirement in project["dependencies"]]


def nats_server_binary() -> Path:
    """The host's `nats-server` (Debian's package, a static binary the image carries)."""
    found = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if not Path(found).is_file():
        raise PodmanError("nats-server was not found: run `make setup`, which installs it")
    return Path(found)


def build_aorta_image(
    podman: PodmanCli, *, name: str = AORTA_IMAGE, cache_dir: Path | None = None
) -> str:
    """Builds (unless up to date) the Aorta image in `podman`'s storage as `name` and returns
    it. The first build on a host runs debootstrap (root only) and installs the dependencies
    from PyPI; later ones reuse both from the cache."""
    cache = cache_dir or default_cache_dir()
    base = import_python_base(podman, cache)
    dependencies = installed_requirements(project_requirements(), cache)
    # In the cache's file system, so the dependencies are hard-linked into the context.
    with tempfile.TemporaryDirectory(prefix="platform-image-", dir=cache) as temporary:
        context = Path(temporary) / "context"
        context.mkdir()
        wheel = _project_wheel(Path(temporary) / "wheel")
        _install_wheel(wheel, context / "aorta")
        bin_folder = context / "bin"
        bin_folder.mkdir()
        (bin_folder / "aorta").write_text(_ENTRY)
        (bin_folder / "aorta").chmod(0o755)
        shutil.copy2(nats_server_binary(), bin_folder / "nats-server")
        containerfile = (REPO_ROOT / "Containerfile").read_text()
        recipe = digest(
            containerfile,
            image_recipe(podman, base) or "",
            dependencies.name,
            _file_digest(wheel),
            _file_digest(bin_folder / "nats-server"),
            _ENTRY,
            _PRECOMPILE,
            *_ADAPTERS,
        )
        if image_recipe(podman, name) == recipe:
            return name
        # The dependencies never change once installed (their folder's name is their pins):
        # hard-linked, not copied, into the context.
        shutil.copytree(dependencies, context / "dependencies", copy_function=os.link)
        _precompile(context)
        staged = Path(temporary) / "Containerfile"
        staged.write_text(f"{containerfile}LABEL {RECIPE_LABEL}={recipe}\n")
        replaced = _image_id(podman, name)
        podman.run(
            *("build", "--quiet", "--pull=never", "--layers=false", "-t", name),
            *("--build-arg", f"BASE={base}", "-f", str(staged), str(context)),
        )
        if replaced is not None:
            with contextlib.suppress(PodmanError):
                podman.run("rmi", replaced)
    _log.info("built the Aorta image", image=name)
    return name


def _project_wheel(folder: Path) -> Path:
    """The project's wheel, built from a copy of the checkout's sources (a build never writes
    into the shared checkout)."""
    source = folder / "source"
    source.mkdir(parents=True)
    for entry in _SOURCES:
        path = REPO_ROOT / entry
        if path.is_dir():
            shutil.copytree(path, source / entry, ignore=_IGNORED)
        else:
            shutil.copy2(path, source / entry)
    out = folder / "dist"
    run_checked(
        [
            sys.executable,
            *("-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"),
            *("--wheel-dir", str(out), str(source)),
        ]
    )
    return next(out.glob("aorta-*.whl"))


def _install_wheel(wheel: Path, target: Path) -> None:
    uv = Path(sys.executable).parent / "uv"
    run_checked(
        [
            str(uv if uv.exists() else shutil.which("uv") or "uv"),
            *("pip", "install", "-q", "--no-deps", "--target", str(target)),
            *("--python-version", PYTHON_VERSION, str(wheel)),
        ]
    )
    # The installer's own script names the host's interpreter; the image has its own.
    shutil.rmtree(target / "bin", ignore_errors=True)


def _precompile(context: Path) -> None:
    """Writes the bytecode of the services' modules into the context (beside the hard links
    to the cached dependencies, never into the cache), when the host's Python is the image's."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" != PYTHON_VERSION:
        _log.info("no bytecode in the Aorta image: the host's Python is not the image's")
        return
    roots = [str(context / "aorta"), str(context / "dependencies")]
    run_checked([sys.executable, "-I", "-S", "-c", _PRECOMPILE, *roots, *_ADAPTERS])


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _image_id(podman: PodmanCli, name: str) -> str | None:
    try:
        return podman.run("image", "inspect", "--format", "{{.Id}}", name).strip() or None
    except PodmanError:
        return None


def main() -> None:
    """`make image`: builds the Aorta image in the host's podman storage."""
    try:
        name = build_aorta_image(PodmanCli.host())
    except (PodmanError, subprocess.CalledProcessError) as error:
        raise SystemExit(f"the Aorta image could not be built: {error}") from None
    print(name)


if __name__ == "__main__":
    main()
