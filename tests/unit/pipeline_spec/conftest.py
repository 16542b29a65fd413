"""The YAML parser the corpus tests run under, each of them once with either."""

from __future__ import annotations

import pytest
import yaml

from aorta.pipeline_spec import yaml_nodes as yaml_nodes


@pytest.fixture(params=["libyaml", "python"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test with libyaml's event parser and again with PyYAML's own."""
    if request.param == "python":
        monkeypatch.setattr(yaml_nodes, "_LOADER", yaml.SafeLoader)
    elif not yaml.__with_libyaml__:
        pytest.fail("PyYAML was built without libyaml; the project pins a wheel that has it")
    return str(request.param)
