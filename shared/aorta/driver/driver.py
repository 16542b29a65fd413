"""The Clara Pipeline Driver life-cycle: prepare, wait for inputs, execute, clean up.

An operator script builds a `Driver` from callbacks, calls `start()` and then
`wait_for_completion()` (docs/clara-compatibility.md, "The pipeline driver life-cycle"). The
life-cycle runs on the driver's own thread pool; a failure anywhere reaches the notification
handler, the `aorta.driver` logger and, finally, the caller of `wait_for_completion()`, whose
uncaught `DriverError` makes the operator process exit non-zero so the platform marks the job
FAULTED.

Logging goes through the standard `logging` module rather than structlog: the driver runs inside
someone else's script and must follow whatever logging that script configured. With none
configured, warnings and errors still reach stderr through `logging`'s last-resort handler.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from aorta.driver.payload import Payload
from aorta.errors import AortaError, Invalid
from aorta.operator_env import NOSYNCLOCK, OperatorEnvironment

_log = logging.getLogger("aorta.driver")


class DriverError(AortaError):
    """A driver call was misused, or the life-cycle failed (Clara's `clara.Error`).

    `phase` names the callback that failed (`prepare`, `execute`, `cleanup`), or is None for a
    misuse or a malformed environment. A callback's exception is the `__cause__`.
    """

    def __init__(self, *messages: str, phase: str | None = None, code: int | None = None) -> None:
        super().__init__(*messages, code=code)
        self.phase = phase


class Severity(enum.IntEnum):
    """How much a notification matters; the values are `logging` levels."""

    INFO = logging.INFO
    WARNING = logging.WARNING
    ERROR = logging.ERROR


class DriverEvent(enum.Enum):
    """What happened inside the driver."""

    STARTED = "started"
    INPUT_MISSING = "input-missing"
    INPUTS_READY = "inputs-ready"
    CALLBACK_FAILED = "callback-failed"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True)
class Notification:
    """What the notification handler receives, after the driver: `handler(driver, notification)`.

    `phase` and `error` are set for a failed callback (`error` is None when it returned False).
    """

    event: DriverEvent
    severity: Severity
    message: str
    phase: str | None = None
    error: BaseException | None = None

    def __str__(self) -> str:
        return self.message


PrepareHandler = Callable[["Driver"], Any]
ExecuteHandler = Callable[["Driver", Payload], Any]
CleanupHandler = Callable[["Driver"], Any]
NotificationHandler = Callable[["Driver", Notification], Any]


class Driver:
    """One operator run's life-cycle, configured from the operator environment.

    Callbacks (all optional, keyword-only, under the names Clara scripts use):
    `prepare_handler(driver)` runs once before the inputs are ready, `execute_handler(driver,
    payload)` once after them, `cleanup_handler(driver)` once at the end, also after a failed
    prepare or execute. A callback fails by raising an `Exception` or returning `False` (any
    other return value, None included, is success); a failed prepare skips execute. Every
    failure reaches `error_handler(driver, notification)` (also accepted as
    `notification_handler`); an exception raised by that handler is logged and ignored.

    The environment is read once, at construction, from `environ` (default `os.environ`); a
    malformed one raises `DriverError`. Missing values get `OperatorEnvironment.from_env`'s
    local defaults.
    """

    def __init__(
        self,
        *,
        execute_handler: ExecuteHandler | None = None,
        prepare_handler: PrepareHandler | None = None,
        cleanup_handler: CleanupHandler | None = None,
        error_handler: NotificationHandler | None = None,
        notification_handler: NotificationHandler | None = None,
        app_data: Any = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if error_handler is not None and notification_handler is not None:
            raise TypeError("give error_handler or notification_handler, not both")
        try:
            self._environment = OperatorEnvironment.from_env(
                os.environ if environ is None else environ
            )
        except Invalid as exc:
            raise DriverError("malformed operator environment", *exc.messages) from exc
        self._payload = Payload.from_environment(self._environment)
        self._prepare = prepare_handler
        self._execute = execute_handler
        self._cleanup = cleanup_handler
        self._notify_handler = error_handler or notification_handler
        self._app_data = app_data
        self._lock = threading.Lock()
        self._future: Future[None] | None = None
        self._pool_thread: threading.Thread | None = None
        self._failure: DriverError | None = None
        self._failure_delivered = False

    @property
    def app_data(self) -> Any:
        """The application data given to the constructor, or None."""
        return self._app_data

    @property
    def job_id(self) -> UUID:
        return self._environment.job_uuid

    @property
    def job_name(self) -> str:
        return self._environment.job_name

    @property
    def stage_name(self) -> str:
        """The operator's name in its pipeline."""
        return self._environment.stage_name

    @property
    def stage_timeout(self) -> timedelta:
        """How long the platform lets this stage run before it stops it."""
        return timedelta(seconds=self._environment.stage_timeout)

    def start(self) -> None:
        """Starts the life-cycle on the driver's thread pool and returns at once.

        A driver runs once: a second call raises `DriverError`.
        """
        with self._lock:
            if self._future is not None:
                raise DriverError("start() was already called: a driver runs its life-cycle once")
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clara-driver")
            self._future = pool.submit(self._run)
            # The pool takes no more work; its thread exits once the life-cycle is over.
            pool.shutdown(wait=False)
        _record_start(self)

    def wait_for_completion(self) -> None:
        """Blocks until the life-cycle is over; returns at once if it already is.

        Raises `DriverError` without blocking when called before `start()` or from inside a
        callback (it would wait for itself). After a failed life-cycle, raises `DriverError`
        with the first failure's message, `phase` and cause, on every call. A `BaseException`
        that is not an `Exception` (`SystemExit` from `sys.exit` in a callback) is re-raised
        as is, after cleanup ran.
        """
        # The thread check comes first: a callback may run before `start()` stored the future.
        # Thread objects, unlike thread idents, are never reused for another thread.
        if threading.current_thread() is self._pool_thread:
            raise DriverError("wait_for_completion() was called from a driver callback")
        future = self._future
        if future is None:
            raise DriverError("wait_for_completion() was called before start()")
        future.result()
        failure = self._failure
        if failure is not None:
            self._failure_delivered = True
            raise DriverError(*failure.messages, phase=failure.phase) from failure.__cause__

    def _run(self) -> None:
        self._pool_thread = threading.current_thread()
        env = self._environment
        self._notify(
            DriverEvent.STARTED,
            Severity.INFO,
            f"life-cycle started: job {env.job_id} ({env.job_name}), stage {env.stage_name}",
        )
        try:
            if self._call("prepare", self._prepare, self):
                self._wait_for_inputs()
                self._call("execute", self._execute, self, self._payload)
        finally:
            self._call("cleanup", self._cleanup, self)
        if self._failure is None:
            self._notify(DriverEvent.COMPLETED, Severity.INFO, "life-cycle completed")
        else:
            self._notify(DriverEvent.FAILED, Severity.ERROR, f"life-cycle failed: {self._failure}")

    def _wait_for_inputs(self) -> None:
        # Aorta starts an operator only after every upstream operator exited 0 and its outputs
        # were stored, so there is never anything to wait for. Without NOSYNCLOCK the driver
        # still checks the input folders exist: a missing one means a broken mount.
        if self._environment.nosynclock:
            reason = f"{NOSYNCLOCK} is set, no synchronization lock"
        else:
            reason = "the platform starts an operator once its inputs are complete"
            for entry in self._payload.input_entries:
                if not Path(entry.path).exists():
                    self._notify(
                        DriverEvent.INPUT_MISSING,
                        Severity.WARNING,
                        f"input {entry.name!r} is missing: {entry.path} does not exist",
                    )
        self._notify(DriverEvent.INPUTS_READY, Severity.INFO, f"inputs ready ({reason})")

    def _call(self, phase: str, handler: Callable[..., Any] | None, *args: Any) -> bool:
        if handler is None:
            return True
        try:
            result = handler(*args)
        except Exception as exc:
            self._fail(phase, f"{phase} raised {type(exc).__name__}: {exc}", exc)
            return False
        if result is False:
            self._fail(phase, f"{phase} returned False", None)
            return False
        return True

    def _fail(self, phase: str, message: str, error: Exception | None) -> None:
        if self._failure is None:
            failure = DriverError(message, phase=phase)
            failure.__cause__ = error
            self._failure = failure
        self._notify(DriverEvent.CALLBACK_FAILED, Severity.ERROR, message, phase, error)

    def _notify(
        self,
        event: DriverEvent,
        severity: Severity,
        message: str,
        phase: str | None = None,
        error: BaseException | None = None,
    ) -> None:
        _log.log(severity, "%s: %s", self._environment.stage_name, message, exc_info=error)
        if self._notify_handler is None:
            return
        try:
            self._notify_handler(self, Notification(event, severity, message, phase, error))
        except Exception:
            _log.exception("the notification handler raised; the driver carries on")


_started: list[Driver] | None = None
_started_lock = threading.Lock()


def _record_start(driver: Driver) -> None:
    with _started_lock:
        if _started is not None:
            _started.append(driver)


@contextmanager
def tracking_starts() -> Iterator[list[Driver]]:
    """Collects every driver started inside the block, for a runner to check afterwards.

    Only one block may be active at a time (a process runs one operator script).
    """
    global _started
    with _started_lock:
        if _started is not None:
            raise RuntimeError("tracking_starts() is already active")
        collected: list[Driver] = []
        _started = collected
    try:
        yield collected
    finally:
        with _started_lock:
            _started = None


def undelivered_failure(driver: Driver) -> DriverError | None:
    """Waits for `driver`'s life-cycle; returns a failure `wait_for_completion` never raised.

    For runners: a script that started a driver but never waited for it must still fail its
    process. A failure the script already received is its own to handle, so it is not returned.
    """
    future = driver._future
    if future is None:
        return None
    future.exception()
    return None if driver._failure_delivered else driver._failure
