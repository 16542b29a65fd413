"""structlog set-up: JSON lines in services, a readable console in the CLI, a log file for
`aorta up`.

Context (request id, RPC name, job and operator ids) is bound through `structlog.contextvars`,
so it follows an RPC or a bus message across awaits without being passed by hand; the trace id
of the span being served is added to each line (`add_trace_id`).

Logging never blocks the code that logs: an event is rendered into a record and put on a
bounded queue, and one thread writes the records to their sinks (a stream, and a rotating file
when asked). A full queue, a full disk or a stream nobody reads loses log lines, counted in
`dropped_log_lines()`; it never holds up a request.
"""

from __future__ import annotations

import atexit
import copy
import logging
import logging.handlers
import os
import queue
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import structlog

from aorta.observability import metrics

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
QUEUE_SIZE = 10_000
"""Records waiting for the writer thread; more are dropped."""
LOG_FILE_BYTES = 10 << 20
"""Size at which the log file is rotated."""
LOG_FILE_BACKUPS = 5
"""Rotated log files kept (`aorta.log.1` ... `aorta.log.5`)."""
STOP_TIMEOUT = 5.0
"""Seconds `flush_logs` waits for queued lines to be written; a sink that hangs loses them."""
_EVENTS_LOGGER = "aorta:structlog"
"""The stdlib logger structlog events go through (a name no module has)."""


class _Drops:
    """How many log lines were lost (a full queue, a sink that failed), also counted by
    `aorta_log_lines_dropped` for `/metrics`."""

    count = 0

    @classmethod
    def add(cls, lines: int = 1) -> None:
        cls.count += lines
        metrics.LOG_LINES_DROPPED.inc(lines)


def dropped_log_lines() -> int:
    """Log lines lost since the process started, because the queue was full or a sink failed."""
    return _Drops.count


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """Puts records on the bounded queue without waiting; a full queue drops the record."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # The writer thread renders the record: structlog's event dict travels as is, while a
        # library's message is formatted now, before its arguments can change.
        prepared = copy.copy(record)
        if not isinstance(prepared.msg, dict):
            prepared.msg, prepared.args = prepared.getMessage(), None
        return prepared

    def handleError(self, record: logging.LogRecord) -> None:
        _Drops.add()


class _DroppingStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    def handleError(self, record: logging.LogRecord) -> None:
        _Drops.add()


class _PrivateRotatingFile(logging.handlers.RotatingFileHandler):
    """A rotating file created 0600, whose write errors (a full disk) drop the line."""

    def _open(self) -> Any:
        descriptor = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return os.fdopen(descriptor, "a", encoding=self.encoding or "utf-8")

    def handleError(self, record: logging.LogRecord) -> None:
        _Drops.add()


class _Listener(logging.handlers.QueueListener):
    """The writer thread; stopping it waits for the queue to drain, at most `STOP_TIMEOUT`."""

    def enqueue_sentinel(self) -> None:
        # The queue may be full: wait for room, as the writer empties it.
        self.queue.put(self._sentinel, timeout=STOP_TIMEOUT)  # type: ignore[attr-defined]

    def stop(self) -> None:
        thread = self._thread
        if thread is None:
            return
        try:
            self.enqueue_sentinel()
        except queue.Full:
            _Drops.add(self.queue.qsize())  # type: ignore[attr-defined]
        else:
            thread.join(STOP_TIMEOUT)
        self._thread = None


class _Writer:
    """The queue and the thread that empties it, replaced by each `configure_logging`."""

    listener: _Listener | None = None

    @classmethod
    def replace(cls, listener: _Listener | None) -> None:
        cls.stop()
        cls.listener = listener
        if listener is not None:
            listener.start()

    @classmethod
    def stop(cls) -> None:
        """Writes what is queued, then ends the thread."""
        if cls.listener is not None:
            listener, cls.listener = cls.listener, None
            listener.stop()
            for handler in listener.handlers:
                handler.close()


atexit.register(_Writer.stop)


def configure_logging(
    fmt: str = "json",
    level: str = "info",
    stream: Any = None,
    *,
    log_file: Path | None = None,
    stream_level: str | None = None,
) -> None:
    """Configures structlog and the stdlib root logger; a later call replaces an earlier one.

    - `fmt`: how the stream shows events, `json` (one object a line) or `console`.
    - `level`: the least severe level logged (`debug`, `info`, `warning`, `error`).
    - `stream`: where events go (default: stderr).
    - `log_file`: also write every event as a JSON line to this file (created 0600, rotated at
      `LOG_FILE_BYTES` keeping `LOG_FILE_BACKUPS`); its folder must exist.
    - `stream_level`: a stricter level for the stream alone (a terminal that should show only
      warnings while the file keeps everything); a `console` stream then shows each event
      without its time and module, which the file keeps.

    Other libraries' loggers are shown from `warning` up.
    """
    out = stream if stream is not None else sys.stderr
    numeric = _LEVELS.get(level, logging.INFO)
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_trace_id,
            structlog.processors.add_log_level,
            timestamper,
            # Here, in the thread that logs: the exception being handled is only known there.
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=lambda *args: logging.getLogger(_EVENTS_LOGGER),
        cache_logger_on_first_use=False,
    )
    foreign = [structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name, timestamper]
    console = fmt == "console"
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=_is_terminal(out))
        if console
        else structlog.processors.JSONRenderer()
    )
    sinks: list[logging.Handler] = [_DroppingStreamHandler(out)]
    sinks[0].setLevel(max(numeric, _LEVELS.get(stream_level or level, numeric)))
    terse = console and stream_level is not None and stream_level != level
    sinks[0].setFormatter(_formatter(renderer, foreign, drop=_TERSE_DROPS if terse else ()))
    if log_file is not None:
        file = _PrivateRotatingFile(
            log_file, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS, delay=False
        )
        file.setLevel(numeric)
        file.setFormatter(_formatter(structlog.processors.JSONRenderer(), foreign))
        sinks.append(file)

    records: queue.Queue[logging.LogRecord] = queue.Queue(QUEUE_SIZE)
    listener = _Listener(records, *sinks, respect_handler_level=True)
    events = logging.getLogger(_EVENTS_LOGGER)
    events.setLevel(numeric)
    events.propagate = True
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_DroppingQueueHandler(records))
    root.setLevel(max(numeric, logging.WARNING))
    _Writer.replace(listener)


def add_trace_id(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Adds the trace id of the span being served, when there is one and the event has none
    bound (a job's own trace id is bound where its operators run)."""
    # Only where OpenTelemetry is loaded: a process that does not trace never imports it here.
    otel = sys.modules.get("opentelemetry.trace")
    if otel is not None and "trace_id" not in event:
        context = otel.get_current_span().get_span_context()
        if context.is_valid:
            event["trace_id"] = f"{context.trace_id:032x}"
    return event


def flush_logs() -> None:
    """Writes every queued event and stops the writer thread (at the end of a process; logging
    after it is dropped until `configure_logging` runs again)."""
    _Writer.stop()


_TERSE_DROPS = ("timestamp", "module", "logger")


def _formatter(renderer: Any, foreign: list[Any], drop: tuple[str, ...] = ()) -> logging.Formatter:
    def without(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key in drop:
            event.pop(key, None)
        return event

    return structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, without, renderer],
        foreign_pre_chain=foreign,
    )


def _is_terminal(out: Any) -> bool:
    isatty = getattr(out, "isatty", None)
    return bool(isatty and isatty())


def get_logger(name: str) -> Any:
    """A structlog logger tagged with the module that logs.

    The logger is a lazy proxy: it takes the configuration in force when it first logs, so
    modules may create theirs at import time, before `configure_logging` runs.
    """
    return structlog.get_logger(module=name)
