"""The committed `aorta.api` (shared/aorta/api/) is exactly what protos/ generates today."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[2]
API_DIR = REPO_ROOT / "shared" / "aorta" / "api"


def _load_generator() -> ModuleType:
    # protos/ is a folder of sources, not a package: load the script by its path.
    spec = importlib.util.spec_from_file_location(
        "aorta_protos_generate", REPO_ROOT / "protos" / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _committed() -> dict[str, bytes]:
    return {
        path.relative_to(API_DIR).as_posix(): path.read_bytes()
        for path in API_DIR.rglob("*")
        if path.is_file() and "__pycache__" not in path.relative_to(API_DIR).parts
    }


def test_committed_stubs_match_the_protos(tmp_path: Path) -> None:
    fresh: dict[str, bytes] = _load_generator().generate(tmp_path)
    committed = _committed()
    differing = sorted(
        name for name in fresh.keys() & committed.keys() if fresh[name] != committed[name]
    )
    missing = sorted(fresh.keys() - committed.keys())
    extra = sorted(committed.keys() - fresh.keys())
    assert not (differing or missing or extra), (
        "shared/aorta/api/ is out of date with protos/; run `make protos` and commit the result.\n"
        f"differing: {differing}\nmissing: {missing}\nextra: {extra}"
    )


def test_generate_writes_what_it_returns(tmp_path: Path) -> None:
    fresh: dict[str, bytes] = _load_generator().generate(tmp_path)
    written = {
        path.relative_to(tmp_path).as_posix(): path.read_bytes()
        for path in tmp_path.rglob("*")
        if path.is_file()
    }
    assert written == fresh
    assert {"__init__.py", "jobs_pb2.py", "jobs_pb2.pyi", "jobs_pb2_grpc.py"} <= set(fresh)
