"""Bus subject names: the one list both the gateway and the services read.

Commands are request/reply on `aorta.rpc.<service>.<verb>`, served with the service name as the
queue group so N replicas share the load. Events live under `aorta.events.` (see aorta.bus.events).
"""

from __future__ import annotations

RPC_PREFIX = "aorta.rpc"


def rpc(service: str, verb: str) -> str:
    """The subject on which `service` answers `verb` (both lower-case, dotted words)."""
    return f"{RPC_PREFIX}.{service}.{verb}"


CLARA_VERSION = rpc("clara", "version")
CLARA_UTILIZATION = rpc("clara", "utilization")
CLARA_STOP = rpc("clara", "stop")
MONITOR_GPU_METRICS = rpc("monitor", "gpu_metrics")

# Clara.Stop asks each service that starts things on behalf of pipelines to stop them; a service
# that is not deployed simply does not answer.
SCHEDULER_PLATFORM_STOP = rpc("scheduler", "platform_stop")
MODELS_PLATFORM_STOP = rpc("models", "platform_stop")

# GPU samples published by every node's monitor (core pub/sub, not persisted).
GPU_SAMPLES = "aorta.metrics.gpu"

# Verbs internal to the platform (JSON bodies; see each service's handlers for the schema).
PIPELINES_SNAPSHOT = rpc("pipelines", "snapshot")
"""{pipeline_id} -> {pipeline_id, name, root, files: [{path, content}]}: what a job freezes."""
PAYLOADS_CREATE_FOR_JOB = rpc("payloads", "create_for_job")
"""{job_id, input_payloads: [id]} -> {payload_id}: a PIPELINE payload, reusable inputs copied."""
PAYLOADS_LOCK = rpc("payloads", "lock")
"""{payload_id, job_id} -> {}: the job started; its payload is read-only and in use."""
PAYLOADS_RELEASE = rpc("payloads", "release")
"""{payload_id, job_id} -> {}: the job stopped; its payload may be deleted again."""
MODELS_ACQUIRE_TRITON = rpc("models", "acquire_triton")
"""{job_id, models: [name]} -> {grpc_uri, http_uri}: a server with those models, for this job."""
MODELS_RELEASE_TRITON = rpc("models", "release_triton")
"""{job_id} -> {}: the job stopped; its servers return to the pool."""
