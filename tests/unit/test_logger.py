"""Logging never holds up the code that logs: a sink that fails or blocks loses lines (counted)
instead; the log file is private and gets every event while a terminal sees warnings only."""

from __future__ import annotations

import io
import json
import logging
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from prometheus_client import REGISTRY

from aorta.logger import (
    QUEUE_SIZE,
    configure_logging,
    dropped_log_lines,
    flush_logs,
    get_logger,
)


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


class BlockedStream(io.StringIO):
    """A stream whose writes wait until released, like a pipe nobody reads."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.release.wait()
        return super().write(text)


class FullDisk(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")


def test_the_file_gets_every_event_as_json_and_the_stream_only_warnings(tmp_path: Path) -> None:
    shown = io.StringIO()
    log_file = tmp_path / "aorta.log"
    configure_logging("console", "info", shown, log_file=log_file, stream_level="warning")
    log = get_logger("tests.logger")
    log.info("operator started", job_id="j1")
    log.warning("disk almost full", free_mb=12)
    logging.getLogger("some.library").warning("retrying %s", "connect")
    flush_logs()

    events = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [e["event"] for e in events] == [
        "operator started",
        "disk almost full",
        "retrying connect",
    ]
    assert events[0]["job_id"] == "j1" and events[0]["level"] == "info"
    assert events[2]["logger"] == "some.library"
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    assert "operator started" not in shown.getvalue()
    assert "disk almost full" in shown.getvalue() and "retrying connect" in shown.getvalue()
    # A terminal gets the warning itself; its time and module stay in the file.
    first = shown.getvalue().splitlines()[0].split()
    assert first == ["[warning", "]", "disk", "almost", "full", "free_mb=12"]
    assert all("timestamp" in event and "module" in event for event in events[:2])


def test_an_exception_is_logged_with_its_traceback(tmp_path: Path) -> None:
    shown = io.StringIO()
    configure_logging("json", "info", shown)
    try:
        raise ValueError("bad value")
    except ValueError:
        get_logger("tests.logger").exception("handler failed")
    flush_logs()
    (event,) = [json.loads(line) for line in shown.getvalue().splitlines()]
    assert event["level"] == "error"
    assert "ValueError: bad value" in event["exception"]


def test_a_stream_nobody_reads_does_not_block_logging() -> None:
    stream = BlockedStream()
    configure_logging("json", "info", stream)
    before = dropped_log_lines()
    log = get_logger("tests.logger")
    started = time.monotonic()
    for number in range(QUEUE_SIZE + 500):
        log.info("request served", number=number)
    assert time.monotonic() - started < 10
    assert dropped_log_lines() - before >= 400
    stream.release.set()


def test_a_full_disk_loses_lines_without_an_error(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json", "info", FullDisk(), log_file=tmp_path / "aorta.log")
    before = dropped_log_lines()
    counted = REGISTRY.get_sample_value("aorta_log_lines_dropped_total") or 0.0
    for number in range(20):
        get_logger("tests.logger").warning("still serving", number=number)
    flush_logs()
    assert dropped_log_lines() - before == 20
    # /metrics counts the same lost lines.
    assert REGISTRY.get_sample_value("aorta_log_lines_dropped_total") == counted + 20
    assert "Logging error" not in capfd.readouterr().err
