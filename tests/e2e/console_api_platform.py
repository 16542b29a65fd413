"""The platform of the console's JSON API tests, one per test module: a secured `aorta up`
with its console (`console_platform`), alice and bob (users), vera (a viewer) and the admin,
and alice's copy and slow pipelines. A test module imports the fixtures (`console`, `pipelines`)
by their functions' names, which its tests' arguments do not shadow."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.console_platform import COPY_PIPELINE, SLOW_PIPELINE, Console, running_console

UNKNOWN = "0123456789abcdef0123456789abcdef"
"""An id of the right shape that names nothing."""


@pytest.fixture(scope="module", name="console")
def console_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """The module's platform."""
    people = {"alice": "user", "bob": "user", "vera": "viewer"}
    with running_console(tmp_path_factory.mktemp("console-api"), people) as console:
        yield console


@pytest.fixture(scope="module", name="pipelines")
def pipelines_fixture(console: Console, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The ids of alice's pipelines on it, by name: "copy" (COPY_PIPELINE), "slow"."""
    folder = tmp_path_factory.mktemp("console-api-pipelines")
    (folder / "copy").mkdir()
    (folder / "slow").mkdir()
    return {
        "copy": console.pipeline("alice", folder / "copy", COPY_PIPELINE),
        "slow": console.pipeline("alice", folder / "slow", SLOW_PIPELINE),
    }
