"""Which executor runs operators: the one a setting or flag names, or for `auto` the one this
machine allows (containers when an engine answers, host processes otherwise), with the reason a
start-up line gives for it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aorta.errors import Unavailable
from aorta.executors.engine_probe import PROBE_TIMEOUT, Engine, detect

LOCAL = "local"
CONTAINER = "container"
KUBERNETES = "kubernetes"
AUTO = "auto"
CHOICES = (LOCAL, CONTAINER, KUBERNETES, AUTO)


@dataclass(frozen=True)
class ExecutorChoice:
    """The executor chosen (`local`, `container` or `kubernetes`, never `auto`), the engine
    that answered for `container`, and why, in words."""

    kind: str
    reason: str
    engine: Engine | None = None


async def choose_executor(
    asked: str, environ: Mapping[str, str], within: float = PROBE_TIMEOUT
) -> ExecutorChoice:
    """Resolves `asked` (one of `CHOICES`). `container` and `auto` probe the engine addresses
    of `environ` (`aorta.executors.engine_probe`), each for `within` seconds; `container`
    raises `Unavailable` naming them when none answers, `auto` falls back to host processes.
    `ValueError` for an unknown name."""
    if asked == LOCAL:
        return ExecutorChoice(LOCAL, "operators run as host processes (asked for)")
    if asked == KUBERNETES:
        return ExecutorChoice(KUBERNETES, "operators run as pods on the Kubernetes cluster")
    if asked not in (CONTAINER, AUTO):
        raise ValueError(f"unknown executor {asked!r}; choose one of {', '.join(CHOICES)}")
    detection = await detect(environ, within)
    if detection.engine is not None:
        return ExecutorChoice(CONTAINER, detection.describe(), detection.engine)
    if asked == CONTAINER:
        raise Unavailable(
            "operators were asked to run in containers, but no container engine answered at "
            f"{', '.join(detection.tried)}: start one (e.g. `podman system service`) or set "
            "AORTA_CONTAINER_HOST to its socket"
        )
    return ExecutorChoice(LOCAL, detection.describe())
