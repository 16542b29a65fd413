"""The example pipeline's files, loaded as modules by path (examples/ is not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "segmentation"
OPERATORS = EXAMPLE / "operators"


def load(path: Path, name: str) -> ModuleType:
    """Imports the file at `path` as the module `name` (registered: dataclasses need it)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def generator() -> ModuleType:
    return load(EXAMPLE / "generate_input.py", "example_generate_input")


@pytest.fixture(scope="session")
def renderer() -> ModuleType:
    return load(EXAMPLE / "render_pipeline.py", "example_render_pipeline")


@pytest.fixture(scope="session")
def reader() -> ModuleType:
    return load(OPERATORS / "reader" / "main.py", "example_reader")


@pytest.fixture(scope="session")
def segmentation() -> ModuleType:
    return load(OPERATORS / "segmentation" / "main.py", "example_segmentation")
