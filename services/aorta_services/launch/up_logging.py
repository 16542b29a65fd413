"""Where `aorta up` logs: people at a terminal read a banner, programs read JSON.

At a terminal (stderr is one, and neither `--log-format` nor `AORTA_LOG_FORMAT` says
otherwise) the screen shows the banner and warnings only, and every event goes to
`<data-dir>/logs/aorta.log`. Elsewhere (a pipe, a service manager, a container) or with a
format asked for, every event also stays on stderr, as JSON unless `console` is asked for.
The log file is written in both cases, rotated and private (0600, in a 0700 folder).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aorta.logger import configure_logging

LOG_FORMATS = ("json", "console")
LOG_FOLDER = "logs"
LOG_FILE = "aorta.log"
TERMINAL_LEVEL = "warning"
"""The least severe level a terminal shows while the log file keeps everything."""


@dataclass(frozen=True)
class LogPlan:
    """How `aorta up` logs: the stream's format and levels, and the log file."""

    fmt: str
    level: str
    stream_level: str
    log_file: Path


def plan_logging(
    data_dir: Path, log_format: str | None, environ: Mapping[str, str], terminal: bool
) -> LogPlan:
    """The plan for a platform on `data_dir`: `log_format` is `--log-format` (None when not
    given, then `AORTA_LOG_FORMAT` counts), `terminal` whether stderr is a terminal, and
    `AORTA_LOG_LEVEL` (default `info`) the level of the detailed log."""
    chosen = log_format or environ.get("AORTA_LOG_FORMAT") or None
    level = environ.get("AORTA_LOG_LEVEL") or "info"
    log_file = data_dir / LOG_FOLDER / LOG_FILE
    if chosen is None and terminal:
        return LogPlan("console", level, TERMINAL_LEVEL, log_file)
    return LogPlan(chosen or "json", level, level, log_file)


def start_logging(plan: LogPlan) -> None:
    """Creates the log folder (0700, and the data dir above it when missing) and configures
    logging as `plan` says."""
    folder = plan.log_file.parent
    # A data dir made here is private from the start; an older one is made private by
    # `aorta up` when it takes it (embedded.private_data_dir).
    folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.mkdir(exist_ok=True, mode=0o700)
    folder.chmod(0o700)
    configure_logging(plan.fmt, plan.level, log_file=plan.log_file, stream_level=plan.stream_level)
