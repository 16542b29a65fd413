"""Which executor runs operators: the one a setting or flag names, or for `auto` the one this
machine allows (containers when an engine answers, host processes otherwise), with the reason a
start-up line gives for it.

Where something listens at an engine's address, it may answer slowly (Podman's `/version` runs
its helpers' `--version`: seconds on a busy machine) or not be ready yet (it starts beside the
platform at boot): the choice then probes again for up to `ENGINE_WAIT` seconds, each probe
given twice the time of the last. `container` waits for both; `auto` only for a slow one, so
that a machine without an engine, or with something else at the address, starts at once; and
an address where nothing listens is never waited for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from aorta.errors import Unavailable
from aorta.executors.engine_probe import PROBE_TIMEOUT, Detection, Engine, detect
from aorta.logger import get_logger

LOCAL = "local"
CONTAINER = "container"
KUBERNETES = "kubernetes"
AUTO = "auto"
CHOICES = (LOCAL, CONTAINER, KUBERNETES, AUTO)
ENGINE_WAIT = 60.0
_RETRY_PAUSE = 0.5

_log = get_logger(__name__)


@dataclass(frozen=True)
class ExecutorChoice:
    """The executor chosen (`local`, `container` or `kubernetes`, never `auto`), the engine
    that answered for `container`, and why, in words."""

    kind: str
    reason: str
    engine: Engine | None = None


async def choose_executor(
    asked: str,
    environ: Mapping[str, str],
    within: float = PROBE_TIMEOUT,
    wait: float = ENGINE_WAIT,
) -> ExecutorChoice:
    """Resolves `asked` (one of `CHOICES`). `container` and `auto` probe the engine addresses
    of `environ` (`aorta.executors.engine_probe`), each for `within` seconds at first, probing
    again for up to `wait` seconds as the module says; `container` then raises `Unavailable`
    naming them when none answers, `auto` falls back to host processes. `ValueError` for an
    unknown name."""
    if asked == LOCAL:
        return ExecutorChoice(LOCAL, "operators run as host processes (asked for)")
    if asked == KUBERNETES:
        return ExecutorChoice(KUBERNETES, "operators run as pods on the Kubernetes cluster")
    if asked not in (CONTAINER, AUTO):
        raise ValueError(f"unknown executor {asked!r}; choose one of {', '.join(CHOICES)}")
    detection = await _detect_waiting(asked, environ, within, wait)
    if detection.engine is not None:
        return ExecutorChoice(CONTAINER, detection.describe(), detection.engine)
    if asked == CONTAINER:
        raise Unavailable(
            "operators were asked to run in containers, but no container engine answered at "
            f"{', '.join(detection.tried)} within {wait:.0f} s: start one (e.g. `podman "
            "system service`) or set AORTA_CONTAINER_HOST to its socket"
        )
    return ExecutorChoice(LOCAL, detection.describe())


async def _detect_waiting(
    asked: str, environ: Mapping[str, str], within: float, wait: float
) -> Detection:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        detection = await detect(environ, within)
        remaining = deadline - loop.time()
        if detection.engine is not None or remaining <= 0:
            return detection
        waiting = detection.slow if asked == AUTO else detection.slow + detection.unready
        if not waiting:
            return detection
        _log.info(
            "executor.engine_waiting",
            waiting=list(waiting),
            seconds_left=round(remaining, 1),
        )
        await asyncio.sleep(min(_RETRY_PAUSE, remaining))
        within = max(0.1, min(within * 2, deadline - loop.time()))
