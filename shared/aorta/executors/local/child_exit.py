"""The exit of a child process, awaited without a thread of its own where Linux allows.

asyncio's `subprocess_exec` on Python 3.11 waits for each child in a thread it starts for it
(`ThreadedChildWatcher`): two thread creations and a cross-thread wake-up for every operator
run. Here the event loop watches a pidfd instead (Linux ≥ 5.3), which becomes readable when the
child exits; the loop then reaps it, with no thread and no wait. Where no pidfd can be had
(an older kernel, a seccomp filter that refuses `pidfd_open`, running out of descriptors,
another system), a thread waits for that child, as asyncio would have.

Either way the child is reaped by pid (`waitpid`), so only the process that started it may
watch it; a pid held by an unreaped child cannot be reused, so the pid is safe until then.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading

from aorta.logger import get_logger

_log = get_logger(__name__)
_UNKNOWN_EXIT = 255
"""The code when someone else reaped the child first (as asyncio reports it)."""
_fallback_logged = False


def watch_exit(pid: int) -> asyncio.Future[int]:
    """A future of child `pid`'s exit code (as `subprocess.Popen.returncode`: -N when signal N
    killed it), set once the child exited and was reaped. Call on the loop that is to watch it,
    right after starting the child, once per child.

    The future is the watch's own: cancelling it leaves the child watched and reaped. A child
    still running when its loop closes is left unreaped (a zombie) until this process ends.
    """
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[int] = loop.create_future()
    pidfd = _pidfd(pid)
    if pidfd is None:
        thread = threading.Thread(
            target=_wait_blocking, args=(loop, pid, exited), name=f"aorta-wait-{pid}", daemon=True
        )
        thread.start()
    else:
        loop.add_reader(pidfd, _reap, loop, pidfd, pid, exited)
    return exited


def _pidfd(pid: int) -> int | None:
    global _fallback_logged
    if sys.platform != "linux":
        return None
    try:
        return os.pidfd_open(pid)
    except OSError as error:
        if not _fallback_logged:
            _fallback_logged = True
            _log.info("child exits waited in threads: no pidfd", error=str(error))
        return None


def _reap(
    loop: asyncio.AbstractEventLoop, pidfd: int, pid: int, exited: asyncio.Future[int]
) -> None:
    try:
        waited, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        _log.warning("child reaped by someone else: exit code unknown", pid=pid)
        code = _UNKNOWN_EXIT
    else:
        if waited == 0:  # readable only once the child exited; never wait on the loop
            return
        code = os.waitstatus_to_exitcode(status)
    loop.remove_reader(pidfd)
    os.close(pidfd)
    _settle(exited, code)


def _wait_blocking(loop: asyncio.AbstractEventLoop, pid: int, exited: asyncio.Future[int]) -> None:
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        _log.warning("child reaped by someone else: exit code unknown", pid=pid)
        code = _UNKNOWN_EXIT
    else:
        code = os.waitstatus_to_exitcode(status)
    with contextlib.suppress(RuntimeError):  # the loop closed while the child ran
        loop.call_soon_threadsafe(_settle, exited, code)


def _settle(exited: asyncio.Future[int], code: int) -> None:
    if not exited.done():
        exited.set_result(code)
