"""The Triton pool's verbs, called by the scheduler and by Clara.Stop (bodies in `wire`).

- MODELS_ACQUIRE_TRITON `{job_id, models: [name]}` -> `{grpc_uri, http_uri}` (`host:port`):
  a server holding every named model, for that job only. Unknown names are MODEL_NOT_FOUND,
  all of them named; a model that does not load fails with Triton's own error text. The
  answer can take a server start plus the model loads (seconds; minutes for big models), so
  callers should wait longer than the usual RPC timeout. A caller that gave up, or whose job
  faulted, still calls release: the job holds whatever it got.
- MODELS_RELEASE_TRITON `{job_id}` -> `{}`: the job stopped; its servers return to the pool.
- MODELS_PLATFORM_STOP `{reason}` -> `{"stopped": {"servers": n}}`: every server stops
  (docs/monitoring.md, "Clara.Stop"); the pool keeps serving new acquires afterwards.
"""

from __future__ import annotations

from aorta import ids
from aorta.bus import Request
from aorta.errors import ErrorCode, Invalid, NotFound
from aorta.logger import get_logger
from aorta_services.models import wire
from aorta_services.models.pool import TritonPool
from aorta_services.models.repository import ModelRepository

log = get_logger(__name__)


class PoolVerbs:
    """The handlers of the pool verbs."""

    def __init__(self, pool: TritonPool, repository: ModelRepository) -> None:
        self._pool = pool
        self._repository = repository

    async def acquire(self, request: Request) -> bytes:
        raw_job, names = wire.parse_acquire(request.data)
        job = ids.job_id(raw_job)
        wanted = list(dict.fromkeys(names))
        if not wanted:
            raise Invalid(
                "an acquire must name at least one model", code=ErrorCode.MODEL_REQUEST_INVALID
            )
        found = await self._repository.by_names(wanted)
        unknown = [name for name in wanted if name not in found]
        if unknown:
            raise NotFound(
                f"no model is named {', '.join(repr(name) for name in unknown)}",
                code=ErrorCode.MODEL_NOT_FOUND,
            )
        acquired = await self._pool.acquire(job, {name: found[name].revision for name in wanted})
        return wire.encode({"grpc_uri": acquired.grpc_uri, "http_uri": acquired.http_uri})

    async def release(self, request: Request) -> bytes:
        job = ids.job_id(wire.parse_release(request.data))
        await self._pool.release(job)
        return wire.encode({})

    async def platform_stop(self, request: Request) -> bytes:
        stopped = await self._pool.stop_all()
        log.info("models.platform_stopped", servers=stopped)
        return wire.encode({"stopped": {"servers": stopped}})
