"""The Clara Pipeline Driver life-cycle, run in-process with an injected environment."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

import clara
from aorta.driver import Driver, DriverError, DriverEvent, Notification, Payload, Severity
from aorta.driver.driver import tracking_starts, undelivered_failure

JOB = "0123456789abcdef0123456789abcdef"

BLOCKED_AFTER = 60.0
"""Seconds after which a call that must not block is named blocked."""


def _without_blocking(call: Callable[[], None]) -> BaseException | None:
    """What `call` raised (None if nothing), run in a thread of its own; fails the test when
    it is still blocked after `BLOCKED_AFTER` (a wall-clock bound only a hang reaches)."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except BaseException as error:
            outcome.append(error)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(BLOCKED_AFTER)
    assert not thread.is_alive(), f"blocked for {BLOCKED_AFTER:.0f} s"
    return outcome[0]


def _environ(**extra: str) -> dict[str, str]:
    return {
        "NVIDIA_CLARA_JOBID": JOB,
        "NVIDIA_CLARA_JOBNAME": "nightly",
        "NVIDIA_CLARA_STAGENAME": "segmenter",
        "NVIDIA_CLARA_STAGETIMEOUT": "900",
        "NVIDIA_CLARA_NOSYNCLOCK": "1",
        "NVIDIA_CLARA_INPUTPATHS": "payload:/input",
        "NVIDIA_CLARA_OUTPUTPATHS": "segmenter/seg:/output",
        **extra,
    }


class Recorder:
    """Callbacks that record what ran, on which thread, and what they were given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.notifications: list[Notification] = []
        self.payload: Payload | None = None

    def prepare(self, driver: Driver) -> bool:
        self.calls.append(("prepare", threading.get_ident()))
        return True

    def execute(self, driver: Driver, payload: Payload) -> bool:
        self.calls.append(("execute", threading.get_ident()))
        self.payload = payload
        return True

    def cleanup(self, driver: Driver) -> bool:
        self.calls.append(("cleanup", threading.get_ident()))
        return True

    def notify(self, driver: Driver, notification: Notification) -> None:
        self.notifications.append(notification)

    @property
    def phases(self) -> list[str]:
        return [phase for phase, _ in self.calls]

    def events(self) -> list[DriverEvent]:
        return [n.event for n in self.notifications]


def _driver(recorder: Recorder, **handlers: Any) -> Driver:
    arguments: dict[str, Any] = {
        "prepare_handler": recorder.prepare,
        "execute_handler": recorder.execute,
        "cleanup_handler": recorder.cleanup,
        "error_handler": recorder.notify,
        "environ": _environ(),
    }
    arguments.update(handlers)
    return Driver(**arguments)


def test_life_cycle_runs_each_callback_once_in_order_on_a_pool_thread() -> None:
    recorder = Recorder()
    driver = _driver(recorder)
    driver.start()
    driver.wait_for_completion()
    assert recorder.phases == ["prepare", "execute", "cleanup"]
    threads = {thread for _, thread in recorder.calls}
    assert len(threads) == 1
    assert threading.get_ident() not in threads
    assert recorder.payload == Payload.from_environment(driver._environment)
    assert [(e.name, e.path) for e in recorder.payload.input_entries] == [("payload", "/input")]
    assert [(e.name, e.path) for e in recorder.payload.output_entries] == [
        ("segmenter/seg", "/output")
    ]
    assert recorder.events() == [
        DriverEvent.STARTED,
        DriverEvent.INPUTS_READY,
        DriverEvent.COMPLETED,
    ]


def test_start_returns_before_the_life_cycle_ends() -> None:
    release = threading.Event()
    driver = Driver(execute_handler=lambda d, p: release.wait(10), environ=_environ())
    driver.start()
    assert driver._future is not None and not driver._future.done()
    release.set()
    driver.wait_for_completion()
    assert driver._future.done()


def test_properties_come_from_the_environment() -> None:
    data = {"model": "spleen"}
    driver = Driver(app_data=data, environ=_environ())
    assert driver.app_data is data
    assert driver.job_id == uuid.UUID(hex=JOB)
    assert isinstance(driver.job_id, uuid.UUID)
    assert driver.job_name == "nightly"
    assert driver.stage_name == "segmenter"
    assert driver.stage_timeout == timedelta(seconds=900)
    assert Driver(environ=_environ()).app_data is None


def test_callbacks_reach_app_data_through_the_driver() -> None:
    seen: list[Any] = []
    driver = Driver(
        execute_handler=lambda d, p: seen.append(d.app_data), app_data="state", environ=_environ()
    )
    driver.start()
    driver.wait_for_completion()
    assert seen == ["state"]


def test_start_twice_raises() -> None:
    driver = Driver(environ=_environ())
    driver.start()
    with pytest.raises(DriverError, match="already"):
        driver.start()
    driver.wait_for_completion()


def test_wait_before_start_raises_without_blocking() -> None:
    driver = Driver(execute_handler=lambda d, p: True, environ=_environ())
    error = _without_blocking(driver.wait_for_completion)
    assert isinstance(error, DriverError) and "before start" in str(error)


def test_wait_after_completion_returns_at_once() -> None:
    recorder = Recorder()
    driver = _driver(recorder)
    driver.start()
    driver.wait_for_completion()
    assert _without_blocking(driver.wait_for_completion) is None
    assert recorder.phases == ["prepare", "execute", "cleanup"]


def test_wait_from_inside_a_callback_raises_instead_of_deadlocking() -> None:
    errors: list[DriverError] = []

    def execute(driver: Driver, payload: Payload) -> bool:
        try:
            driver.wait_for_completion()
        except DriverError as exc:
            errors.append(exc)
        return True

    driver = Driver(execute_handler=execute, environ=_environ())
    driver.start()
    driver.wait_for_completion()
    assert len(errors) == 1 and "callback" in str(errors[0])


def test_a_raising_execute_fails_the_life_cycle_and_cleanup_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    boom = ValueError("no such volume")

    def execute(driver: Driver, payload: Payload) -> bool:
        recorder.calls.append(("execute", threading.get_ident()))
        raise boom

    driver = _driver(recorder, execute_handler=execute)
    with caplog.at_level(logging.ERROR, logger="aorta.driver"):
        driver.start()
        with pytest.raises(DriverError) as caught:
            driver.wait_for_completion()
    assert caught.value.phase == "execute"
    assert caught.value.__cause__ is boom
    assert "execute raised ValueError: no such volume" in str(caught.value)
    assert recorder.phases == ["prepare", "execute", "cleanup"]
    failed = [n for n in recorder.notifications if n.event is DriverEvent.CALLBACK_FAILED]
    assert len(failed) == 1
    assert (failed[0].severity, failed[0].phase, failed[0].error) == (
        Severity.ERROR,
        "execute",
        boom,
    )
    assert recorder.events()[-1] is DriverEvent.FAILED
    assert any(r.exc_info and r.exc_info[1] is boom for r in caplog.records)
    with pytest.raises(DriverError, match="no such volume"):
        driver.wait_for_completion()


def test_an_execute_returning_false_fails_the_life_cycle() -> None:
    recorder = Recorder()
    driver = _driver(recorder, execute_handler=lambda d, p: False)
    driver.start()
    with pytest.raises(DriverError, match="execute returned False") as caught:
        driver.wait_for_completion()
    assert caught.value.__cause__ is None
    assert recorder.phases == ["prepare", "cleanup"]
    assert DriverEvent.CALLBACK_FAILED in recorder.events()


def test_a_failed_prepare_skips_execute_but_not_cleanup() -> None:
    recorder = Recorder()
    driver = _driver(recorder, prepare_handler=lambda d: False)
    driver.start()
    with pytest.raises(DriverError) as caught:
        driver.wait_for_completion()
    assert caught.value.phase == "prepare"
    assert recorder.phases == ["cleanup"]


def test_the_first_failure_is_the_one_reported() -> None:
    def cleanup(driver: Driver) -> bool:
        raise RuntimeError("cleanup broke too")

    recorder = Recorder()
    driver = _driver(recorder, execute_handler=lambda d, p: False, cleanup_handler=cleanup)
    driver.start()
    with pytest.raises(DriverError) as caught:
        driver.wait_for_completion()
    assert caught.value.phase == "execute"
    failed = [n.phase for n in recorder.notifications if n.event is DriverEvent.CALLBACK_FAILED]
    assert failed == ["execute", "cleanup"]


def test_returning_none_counts_as_success() -> None:
    driver = Driver(execute_handler=lambda d, p: None, environ=_environ())
    driver.start()
    driver.wait_for_completion()


def test_missing_callbacks_are_skipped() -> None:
    recorder = Recorder()
    driver = Driver(
        execute_handler=recorder.execute, notification_handler=recorder.notify, environ=_environ()
    )
    driver.start()
    driver.wait_for_completion()
    assert recorder.phases == ["execute"]
    empty = Driver(environ=_environ())
    empty.start()
    empty.wait_for_completion()


def test_a_broken_notification_handler_does_not_break_the_life_cycle(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def notify(driver: Driver, notification: Notification) -> None:
        raise RuntimeError("handler bug")

    recorder = Recorder()
    driver = _driver(recorder, error_handler=notify)
    with caplog.at_level(logging.ERROR, logger="aorta.driver"):
        driver.start()
        driver.wait_for_completion()
    assert recorder.phases == ["prepare", "execute", "cleanup"]
    assert "notification handler raised" in caplog.text


def test_system_exit_in_a_callback_runs_cleanup_and_reaches_the_waiter() -> None:
    recorder = Recorder()

    def execute(driver: Driver, payload: Payload) -> bool:
        raise SystemExit(3)

    driver = _driver(recorder, execute_handler=execute)
    driver.start()
    with pytest.raises(SystemExit) as caught:
        driver.wait_for_completion()
    assert caught.value.code == 3
    assert recorder.phases == ["prepare", "cleanup"]


def test_without_nosynclock_missing_inputs_are_reported_as_warnings(tmp_path: Any) -> None:
    present = tmp_path / "in"
    present.mkdir()
    environ = _environ(
        NVIDIA_CLARA_NOSYNCLOCK="0",
        NVIDIA_CLARA_INPUTPATHS=f"payload:{present};reader:{tmp_path / 'gone'}",
    )
    recorder = Recorder()
    driver = _driver(recorder, environ=environ)
    driver.start()
    driver.wait_for_completion()
    missing = [n for n in recorder.notifications if n.event is DriverEvent.INPUT_MISSING]
    assert [(n.severity, "'reader'" in n.message) for n in missing] == [(Severity.WARNING, True)]
    assert recorder.phases == ["prepare", "execute", "cleanup"]


def test_with_nosynclock_inputs_are_not_checked(tmp_path: Any) -> None:
    environ = _environ(NVIDIA_CLARA_INPUTPATHS=f"payload:{tmp_path / 'gone'}")
    recorder = Recorder()
    driver = _driver(recorder, environ=environ)
    driver.start()
    driver.wait_for_completion()
    assert DriverEvent.INPUT_MISSING not in recorder.events()
    ready = [n for n in recorder.notifications if n.event is DriverEvent.INPUTS_READY]
    assert "NVIDIA_CLARA_NOSYNCLOCK" in ready[0].message


def test_a_malformed_environment_raises_driver_error_naming_the_variable() -> None:
    with pytest.raises(DriverError, match="NVIDIA_CLARA_OUTPUTPATHS"):
        Driver(environ=_environ(NVIDIA_CLARA_OUTPUTPATHS="/output"))


def test_error_and_notification_handler_are_one_callback() -> None:
    with pytest.raises(TypeError):
        Driver(error_handler=print, notification_handler=print, environ=_environ())


def test_clara_names_are_the_driver() -> None:
    assert clara.Driver is Driver
    assert clara.Error is DriverError
    assert clara.Payload is Payload


def test_tracking_reports_only_failures_the_script_never_received() -> None:
    with tracking_starts() as started:
        unwaited = Driver(execute_handler=lambda d, p: False, environ=_environ())
        unwaited.start()
        waited = Driver(execute_handler=lambda d, p: False, environ=_environ())
        waited.start()
        with pytest.raises(DriverError):
            waited.wait_for_completion()
        fine = Driver(environ=_environ())
        fine.start()
    assert started == [unwaited, waited, fine]
    failure = undelivered_failure(unwaited)
    assert failure is not None and failure.phase == "execute"
    assert undelivered_failure(waited) is None
    assert undelivered_failure(fine) is None
    outside = Driver(environ=_environ())
    outside.start()
    outside.wait_for_completion()
    assert outside not in started
