"""structlog set-up: JSON lines in services, a readable console in the CLI.

Context (request id, RPC name, job and operator ids) is bound through `structlog.contextvars`,
so it follows an RPC or a bus message across awaits without being passed by hand.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def configure_logging(fmt: str = "json", level: str = "info", stream: Any = None) -> None:
    """Configures structlog and the stdlib root logger once per process."""
    out = stream if stream is not None else sys.stderr
    numeric = _LEVELS.get(level, logging.INFO)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if fmt == "console":
        renderer: Any = structlog.dev.ConsoleRenderer(colors=out.isatty())
    else:
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=out, force=True)


def get_logger(name: str) -> Any:
    """A structlog logger tagged with the module that logs.

    The logger is a lazy proxy: it takes the configuration in force when it first logs, so
    modules may create theirs at import time, before `configure_logging` runs.
    """
    return structlog.get_logger(module=name)
