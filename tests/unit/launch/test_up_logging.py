"""Where `aorta up` logs: a terminal shows warnings only and the file keeps everything; a pipe
or an explicit format keeps every line on stderr; the log folder is private."""

from __future__ import annotations

import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from aorta.logger import flush_logs, get_logger
from aorta_services.launch.up_logging import LogPlan, plan_logging, start_logging

DEBUG_JSON = ("json", "debug", "debug")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Puts logging back as it was: the next test finds structlog's defaults and the root
    logger's own handlers."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    flush_logs()
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_terminal_sees_warnings_and_the_file_gets_the_details(tmp_path: Path) -> None:
    plan = plan_logging(tmp_path, None, {}, terminal=True)
    assert plan == LogPlan("console", "info", "warning", tmp_path / "logs" / "aorta.log")


@pytest.mark.parametrize(
    ("flag", "environ", "terminal", "expected"),
    [
        (None, {}, False, ("json", "info", "info")),
        ("console", {}, True, ("console", "info", "info")),
        ("json", {}, True, ("json", "info", "info")),
        (None, {"AORTA_LOG_FORMAT": "console"}, True, ("console", "info", "info")),
        (None, {"AORTA_LOG_FORMAT": "json", "AORTA_LOG_LEVEL": "debug"}, True, DEBUG_JSON),
        (None, {"AORTA_LOG_LEVEL": "error"}, True, ("console", "error", "warning")),
    ],
)
def test_elsewhere_or_when_asked_every_line_stays_on_stderr(
    tmp_path: Path,
    flag: str | None,
    environ: dict[str, str],
    terminal: bool,
    expected: tuple[str, str, str],
) -> None:
    plan = plan_logging(tmp_path, flag, environ, terminal=terminal)
    assert (plan.fmt, plan.level, plan.stream_level) == expected


def test_the_log_folder_and_file_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    plan = plan_logging(data_dir, "json", {}, terminal=False)
    start_logging(plan)
    get_logger("tests.up").info("aorta.up", address="127.0.0.1:30031")
    flush_logs()
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(plan.log_file.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(plan.log_file.stat().st_mode) == 0o600
    assert '"event": "aorta.up"' in plan.log_file.read_text()
