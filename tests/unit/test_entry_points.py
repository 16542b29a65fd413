"""Every service runs by `python -m aorta_services.NAME` and by `aorta serve NAME` alike: its
`__main__` serves the same `start` the registry names."""

from __future__ import annotations

import importlib

import pytest

from aorta_services.launch import registry


@pytest.mark.parametrize("name", registry.START_ORDER)
def test_python_dash_m_serves_what_the_registry_names(name: str) -> None:
    main = importlib.import_module(f"aorta_services.{name}.__main__")
    assert main.start is registry.starter(name)
    assert main.serve_services.__module__ == "aorta.runtime.process"


def test_the_registry_refuses_an_unknown_service() -> None:
    with pytest.raises(ValueError, match="unknown service nope; known services: pipelines"):
        registry.starters(["gateway", "nope"])
    assert [name for name, _ in registry.starters(["gateway", "pipelines"])] == [
        "pipelines",
        "gateway",
    ]
