"""Suite-wide checks: an async test must not leave asyncio tasks running behind it. And, when
the suite runs as root, the unprivileged user operators run as exists and may enter `tmp_path`
(test operators read scripts and write marks there). Property tests run without Hypothesis's
timing checks (the "aorta" settings profile). The Python children tests start share one
bytecode cache."""

from __future__ import annotations

import asyncio
import os
import pwd
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from aorta.executors.local.operator_user import DEFAULT_RUN_AS

# How long the interpreter may take to exit after the summary before the watchdog ends it.
_EXIT_WATCHDOG_SECONDS = 60.0

# Tasks a library keeps for the life of its client and stops when that client closes; a test
# that closes its clients leaves none of them behind.
_GRACE_SECONDS = 1.0

# Property tests judge their examples, not the machine's speed: Hypothesis's per-example
# deadline (200 ms) and its too-slow health check fail a correct test on a busy machine.
settings.register_profile("aorta", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("aorta")


@pytest.fixture(autouse=True)
async def no_leftover_tasks() -> AsyncIterator[None]:
    """Fails the test when tasks it started are still running after its fixtures closed."""
    before = set(asyncio.all_tasks())
    yield
    current = asyncio.current_task()
    deadline = asyncio.get_running_loop().time() + _GRACE_SECONDS
    while True:
        left = [t for t in asyncio.all_tasks() if t not in before and t is not current]
        left = [t for t in left if not t.done()]
        if not left or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert not left, f"the test left tasks running: {[t.get_name() for t in left]}"


@pytest.fixture(scope="session", autouse=True)
def operator_user() -> None:
    """Creates the operators' user as `make setup` does, when running as root without it."""
    if os.geteuid() != 0:
        return
    try:
        pwd.getpwnam(DEFAULT_RUN_AS)
    except KeyError:
        useradd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
        subprocess.run([*useradd, DEFAULT_RUN_AS], check=True)


@pytest.fixture(scope="session", autouse=True)
def child_bytecode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Lets the Python processes the tests start (`aorta up`, `aorta serve`, the CLI) write
    their bytecode to one cache of the session's, outside the tree. Where the environment says
    not to write it (`PYTHONDONTWRITEBYTECODE`, as on the CI machines) every child compiled the
    platform's modules and its dependencies again: 3.1 s to import what `aorta up` serves with,
    1.1 s from the cache. The source files' stamps keep the cache true to edits."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
        patch.setenv("PYTHONPYCACHEPREFIX", str(tmp_path_factory.mktemp("bytecode")))
        yield


@pytest.fixture
def tmp_path(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pytest's `tmp_path`, which operators may enter and write when the suite runs as root.

    pytest makes its folders 0700, and a root platform runs operators as an unprivileged user.
    What a test wants kept from operators goes in a folder of its own (0700).
    """
    if os.geteuid() == 0:
        base = tmp_path_factory.getbasetemp()
        # pytest's own folders only: a --basetemp's parent may be /tmp itself.
        pytests = [base.parent] if base.parent.name.startswith("pytest-of-") else []
        for folder in (*pytests, base):
            folder.chmod(0o711)
        tmp_path.chmod(0o777)
    return tmp_path


_exit_status = pytest.StashKey[int]()
_outermost = pytest.StashKey[bool]()
# Set by the process's first pytest session: a session a test runs inside it (pytester's, which
# loads this file too) must not arm the watchdog, or it would end the outer run.
_SESSION_MARK = "AORTA_TESTS_OUTER_SESSION"


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_outermost] = _SESSION_MARK not in os.environ
    os.environ.setdefault(_SESSION_MARK, str(os.getpid()))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_exit_status] = int(exitstatus)


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Arms a watchdog for the interpreter's exit. A test that fails mid-way can leave a
    non-daemon thread behind (the worker thread of a store it never closed), and the
    interpreter waits for those forever after the summary: CI would hang until its time limit
    instead of reporting the failure. The watchdog is a daemon thread, so a normal exit ends it;
    a stuck one is named and the process exits with pytest's own status. It runs first: a
    later `pytest_unconfigure` may raise (pytest's own report of unraisable exceptions does)."""
    if not config.stash.get(_outermost, False):
        return
    status = config.stash.get(_exit_status, 1)

    def watch() -> None:
        threading.Event().wait(_EXIT_WATCHDOG_SECONDS)
        stuck = [t.name for t in threading.enumerate() if not t.daemon and t.is_alive()]
        print(f"\nthe interpreter did not exit; threads left: {stuck}", file=sys.stderr)
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(status)

    threading.Thread(target=watch, name="exit-watchdog", daemon=True).start()
