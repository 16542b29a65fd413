"""Fixtures of the CLI tests: the fake platform, sample files, and the `aorta` runner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cli.cli_support import Aorta, Samples, make_samples, root_group
from tests.integration.cli.fake_platform import FakePlatform


@pytest.fixture
def samples(tmp_path: Path) -> Samples:
    return make_samples(tmp_path)


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    fake = FakePlatform()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def environ(platform: FakePlatform, tmp_path: Path) -> dict[str, str]:
    """An environment that points the CLI at the fake and at no real config file."""
    return {
        "AORTA_HOST": platform.address,
        "AORTA_CONFIG": str(tmp_path / "no-config.yaml"),
        "NO_COLOR": "1",
    }


@pytest.fixture
def aorta(environ: dict[str, str]) -> Aorta:
    return Aorta(root_group(), environ)
