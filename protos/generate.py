"""Generate the `aorta.api` package (shared/aorta/api/) from the .proto sources under protos/.

Run as `.venv/bin/python protos/generate.py` (what `make protos` does). protoc, with the gRPC
and mypy-protobuf plugins, writes into a temporary folder; the result then replaces the
contents of shared/aorta/api/, so a proto that was deleted leaves no stale module behind.

The output depends only on the .proto sources and the pinned tool versions: protoc sees
paths relative to protos/, never this machine's absolute paths, so every run gives the same
bytes. `generate` is what the drift test calls to compare a fresh run with the committed files.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO_ROOT / "protos"
# The proto package folder, relative to PROTO_ROOT; protoc mirrors it in its output.
PROTO_PACKAGE = Path("aorta") / "api"
API_DIR = REPO_ROOT / "shared" / "aorta" / "api"

INIT_MODULE = b'''"""Clara Platform API stubs, generated from protos/ by `make protos`: do not edit.

The messages and services are NVIDIA's `nvidia.clara.platform` ones, field for field, so
NVIDIA's clients and ours speak the same wire format; Aorta's own extensions (the audit log)
live apart, in package `aorta.v1`.
"""
'''


class GenerationError(RuntimeError):
    """protoc or one of its plugins failed; the message carries protoc's own output."""


def _plugin(name: str) -> Path:
    """Locate a protoc plugin installed next to the running interpreter (the virtualenv's bin)."""
    # Not resolved: a virtualenv's python is a symlink, and its plugins sit beside the link.
    path = Path(sys.executable).parent / name
    if not path.is_file():
        raise GenerationError(f"{path} not found; install the dev dependencies (`make setup`)")
    return path


def proto_sources() -> list[Path]:
    """The .proto files to compile, relative to PROTO_ROOT, in a stable order."""
    return sorted(
        path.relative_to(PROTO_ROOT) for path in (PROTO_ROOT / PROTO_PACKAGE).glob("*.proto")
    )


def _run_protoc(work_dir: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        "-I",
        ".",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={work_dir}",
        f"--grpc_python_out={work_dir}",
        f"--mypy_out={work_dir}",
        f"--mypy_grpc_out={work_dir}",
        *(str(path) for path in proto_sources()),
    ]
    # Run from PROTO_ROOT so protoc records "aorta/api/x.proto", whatever the checkout's path.
    result = subprocess.run(command, cwd=PROTO_ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise GenerationError(f"protoc failed ({result.returncode}):\n{result.stderr}")


def generate(out_dir: Path) -> dict[str, bytes]:
    """Generate the whole `aorta.api` package into `out_dir` (created if needed).

    Returns every file written, keyed by its path relative to `out_dir` (POSIX separators).
    `out_dir` should be empty: files already there are left alone and not reported.
    Raises GenerationError when protoc or a plugin fails.
    """
    files: dict[str, bytes] = {"__init__.py": INIT_MODULE}
    with tempfile.TemporaryDirectory(prefix="aorta-protos-") as tmp:
        work_dir = Path(tmp)
        _run_protoc(work_dir)
        generated = work_dir / PROTO_PACKAGE
        for path in sorted(generated.rglob("*")):
            if path.is_file():
                files[path.relative_to(generated).as_posix()] = path.read_bytes()
    _write(out_dir, files)
    return files


def _write(out_dir: Path, files: dict[str, bytes]) -> None:
    for name, content in files.items():
        target = out_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def install(api_dir: Path = API_DIR) -> dict[str, bytes]:
    """Regenerate `api_dir` so that it holds exactly the generated files, and return them."""
    # Generate aside first, so a protoc failure leaves the committed package untouched.
    with tempfile.TemporaryDirectory(prefix="aorta-api-") as tmp:
        files = generate(Path(tmp))
    if api_dir.exists():
        shutil.rmtree(api_dir)
    _write(api_dir, files)
    return files


def main() -> None:
    """Regenerate shared/aorta/api/ and list what it now holds."""
    files = install()
    for name in sorted(files):
        print(f"shared/aorta/api/{name}")


if __name__ == "__main__":
    main()
