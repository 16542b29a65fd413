"""The suite's own guard: an async test that leaves a task running fails."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parent.parent / "conftest.py"


def test_a_test_leaving_a_task_behind_fails(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(
        """
        import asyncio

        async def test_leaves_a_task():
            asyncio.get_running_loop().create_task(asyncio.sleep(30), name="forgotten")

        async def test_cleans_up():
            task = asyncio.get_running_loop().create_task(asyncio.sleep(30))
            task.cancel()
        """
    )
    result = pytester.runpytest(
        "-p",
        "asyncio",
        "-o",
        "asyncio_mode=auto",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
    )
    # The leaving test's body passes; its teardown is what fails.
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*the test left tasks running*forgotten*"])
