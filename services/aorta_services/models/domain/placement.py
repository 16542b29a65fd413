"""Which Triton server serves a job's models, and which idle servers to stop: pure, no I/O.

The rules (docs/models.md, "The Triton pool"):

1. One acquire gets one server holding all its models; it may not ask for more models than one
   server holds (`models_per_server`).
2. A server is never shared between two jobs; the operators of one job share its server: a
   server already held by the job is chosen first when the models it lacks still fit. Within a
   job, a model already loaded is kept as loaded (a job sees one revision of a model).
3. Otherwise the idle server that already holds the most of the requested models at their
   current revision is taken, so only the missing (or outdated) ones are loaded; ties go to the
   one that must unload fewer models to make room, then to the most recently released (the
   older ones are left to expire). Models nobody asked for are unloaded only to make room.
4. Otherwise a new server is started, unless `max_servers` already run.

When the job's server must sit on given GPUs (`gpus`, see `aorta_services.models.domain.gpus`),
rule 3 considers only idle servers on exactly those devices; when none fits and no new server
may start, an idle server on other devices is taken rather than failing the job.

Idle servers are kept warm up to `pool_size`, most recently released first, each for at most
`idle_seconds`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aorta.errors import ErrorCode, Invalid, Unavailable


@dataclass(frozen=True)
class ServerView:
    """What placement needs to know of one server.

    `models` maps each model loaded, or being loaded, to its revision; `idle_since` is when the
    server was last released (clock seconds), None while a job holds it; `gpus` the node's
    devices it runs on (empty: the CPU).
    """

    id: str
    job: str | None
    models: Mapping[str, str]
    idle_since: float | None = None
    gpus: tuple[int, ...] = ()


@dataclass(frozen=True)
class Placement:
    """The decision: `server` (None: start a new one), what to unload first, what to load."""

    server: str | None
    load: tuple[str, ...]
    unload: tuple[str, ...] = ()


def place(
    job: str,
    wanted: Mapping[str, str],
    servers: Sequence[ServerView],
    *,
    models_per_server: int,
    max_servers: int,
    gpus: tuple[int, ...] | None = None,
) -> Placement:
    """Where `job`'s models `wanted` (name -> current revision) go (see the module docstring);
    `gpus`, when given, the devices the job's server should run on.

    `Invalid` (MODEL_REQUEST_INVALID) when they cannot fit one server; `Unavailable` when every
    server is held by other jobs and no new one may start.
    """
    if len(wanted) > models_per_server:
        raise Invalid(
            f"{len(wanted)} models were requested together, but one Triton server holds at "
            f"most {models_per_server} (AORTA_TRITON_MODELS_PER_SERVER)",
            code=ErrorCode.MODEL_REQUEST_INVALID,
        )
    own = []
    for server in servers:
        if server.job != job:
            continue
        missing = tuple(sorted(name for name in wanted if name not in server.models))
        if len(server.models) + len(missing) <= models_per_server:
            own.append((len(missing), server.id, Placement(server.id, missing)))
    if own:
        return min(own)[2]
    idle = []
    for server in servers:
        if server.job is not None:
            continue
        current = [name for name in wanted if server.models.get(name) == wanted[name]]
        load = tuple(sorted(name for name in wanted if name not in current))
        extra = sorted(name for name in server.models if name not in wanted)
        overflow = len(set(server.models) | set(wanted)) - models_per_server
        unload = tuple(extra[: max(overflow, 0)])
        released = server.idle_since or 0.0
        elsewhere = gpus is not None and server.gpus != gpus
        key = (elsewhere, -len(current), len(unload), -released, server.id)
        idle.append((key, Placement(server.id, load, unload)))
    room = len(servers) < max_servers
    if idle:
        (elsewhere, *_), best = min(idle)
        if not (elsewhere and room):
            return best
    if room:
        return Placement(None, tuple(sorted(wanted)))
    raise Unavailable(
        f"all {len(servers)} Triton servers are held by running jobs; no server may be added "
        "(AORTA_TRITON_MAX_SERVERS)"
    )


def to_stop(
    servers: Sequence[ServerView], *, now: float, pool_size: int, idle_seconds: float
) -> list[str]:
    """The idle servers to stop now: those idle for `idle_seconds` or more, and beyond the
    `pool_size` most recently released."""
    idle = [s for s in servers if s.job is None and s.idle_since is not None]
    expired = [s.id for s in idle if now - (s.idle_since or 0.0) >= idle_seconds]
    kept = sorted(
        (s for s in idle if s.id not in expired),
        key=lambda s: (-(s.idle_since or 0.0), s.id),
    )
    return expired + [s.id for s in kept[pool_size:]]


def next_expiry(servers: Sequence[ServerView], *, idle_seconds: float) -> float | None:
    """When the next idle server expires (clock seconds), or None when none is idle."""
    moments = [s.idle_since + idle_seconds for s in servers if s.idle_since is not None]
    return min(moments) if moments else None
