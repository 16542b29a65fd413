"""The Triton pool's verbs, called by the scheduler and by Clara.Stop (`aorta.contracts`).

- MODELS_ACQUIRE_TRITON (`AcquireTriton` -> `TritonServer`, URIs as `host:port`): a server
  holding every named model, for that job only, on the job's GPUs when it names any. Unknown
  names are MODEL_NOT_FOUND, all of them named; a model that does not load fails with Triton's
  own error text. The answer can take a server start plus the model loads (seconds; minutes
  for big models), so callers should wait longer than the usual RPC timeout. A caller that
  gave up, or whose job faulted, still calls release: the job holds whatever it got.
- MODELS_RELEASE_TRITON (`ReleaseTriton` -> `Done`): the job stopped; its servers return to
  the pool (another replica's at that replica's next sync, see `pool_cluster`).
- MODELS_PLATFORM_STOP (`PlatformStop` -> `PlatformStopped`, `{"servers": n}`, the servers of
  the replica that answers): every server of every replica stops, the other replicas' at their
  next sync (`pool_cluster`; docs/monitoring.md, "Clara.Stop"); the pool keeps serving new
  acquires afterwards.
"""

from __future__ import annotations

from aorta import contracts
from aorta.errors import ErrorCode, Invalid, NotFound
from aorta.logger import get_logger
from aorta_services.models.pool_cluster import PoolCluster
from aorta_services.models.repository import ModelRepository

log = get_logger(__name__)


class PoolVerbs:
    """The handlers of the pool verbs."""

    def __init__(self, cluster: PoolCluster, repository: ModelRepository) -> None:
        self._cluster = cluster
        self._repository = repository

    async def acquire(self, request: contracts.AcquireTriton) -> contracts.TritonServer:
        wanted = list(dict.fromkeys(request.models))
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
        revisions = {name: found[name].revision for name in wanted}
        acquired = await self._cluster.acquire(request.job_id, revisions, request.gpus)
        return contracts.TritonServer(grpc_uri=acquired.grpc_uri, http_uri=acquired.http_uri)

    async def release(self, request: contracts.ReleaseTriton) -> contracts.Done:
        await self._cluster.release(request.job_id)
        return contracts.Done()

    async def platform_stop(self, request: contracts.PlatformStop) -> contracts.PlatformStopped:
        stopped = await self._cluster.platform_stop()
        log.info("models.platform_stopped", servers=stopped)
        return contracts.PlatformStopped({"servers": stopped})
