"""Every Prometheus metric family the platform exports, defined once.

Services import the family they feed from here, so one process (`aorta up` runs every service
in one) registers each name once and a scrape of `/metrics` on the health port shows them all.
Names follow Prometheus conventions: an `aorta_` prefix (the gRPC ones keep the names of the
widely used gRPC interceptors so existing dashboards work), the unit in the name, and labels of
low cardinality: never a job, payload or run id. docs/observability.md lists each one.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from aorta.subjects import RPC_PREFIX

EXPOSITION_CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The Content-Type of `exposition()`: Prometheus' text format."""

_recording = True


def recording() -> bool:
    """Whether this process feeds its metrics (`AORTA_METRICS`, on unless turned off).

    Every place that feeds a family asks first, so metrics turned off cost one call here and
    the per-call timing (the gateway's interceptor, the bus requests) is not even set up.
    """
    return _recording


def set_recording(on: bool) -> None:
    """Turns feeding on or off for the whole process (`aorta.runtime.process` does, from the
    settings, before any service starts)."""
    global _recording
    _recording = on


def exposition() -> bytes:
    """Every family of this process in Prometheus' text format, as `/metrics` serves it."""
    return generate_latest(REGISTRY)


def subject_service(subject: str) -> str:
    """The service that answers a bus request on `subject` (`aorta.rpc.<service>.<verb>`), the
    label of `BUS_REQUEST_SECONDS`; `other` for a subject outside that scheme, so the label
    stays of low cardinality."""
    prefix, _, rest = subject.partition(f"{RPC_PREFIX}.")
    service = rest.split(".", 1)[0]
    return service if not prefix and service else "other"


LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
"""Seconds: from a cached answer to a slow store write or a cold Triton start."""
DURATION_BUCKETS = (
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 4 * 3600.0,
)  # fmt: skip
"""Seconds: operators and queue waits last from milliseconds to hours."""

# gRPC server (the gateway)
GRPC_STARTED = Counter(
    "grpc_server_started",
    "RPCs started on the server.",
    ("grpc_type", "grpc_service", "grpc_method"),
)
GRPC_HANDLED = Counter(
    "grpc_server_handled",
    "RPCs completed on the server, whatever their status code.",
    ("grpc_type", "grpc_service", "grpc_method", "grpc_code"),
)
GRPC_HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time the server took to answer an RPC, to its last message.",
    ("grpc_type", "grpc_service", "grpc_method"),
    buckets=LATENCY_BUCKETS,
)

# Jobs and the queue (the scheduler)
JOBS_CREATED = Counter("aorta_jobs_created", "Jobs created.")
JOB_TRANSITIONS = Counter(
    "aorta_job_transitions",
    "Job state changes, by the Clara state and status entered.",
    ("state", "status"),
)
JOBS = Gauge("aorta_jobs", "Jobs known to the scheduler leader, by phase.", ("phase",))
QUEUE_DEPTH = Gauge("aorta_queue_depth", "Queued jobs, by priority.", ("priority",))
QUEUE_WAIT_SECONDS = Histogram(
    "aorta_queue_wait_seconds",
    "Time from a job's Jobs.Start to its RUNNING state.",
    buckets=DURATION_BUCKETS,
)

# Operators (the scheduler, from what the executor reports)
OPERATOR_RUNS = Counter(
    "aorta_operator_runs",
    "Operator runs ended, by executor and outcome (the executor's run reason).",
    ("executor", "outcome"),
)
OPERATOR_DURATION_SECONDS = Histogram(
    "aorta_operator_duration_seconds",
    "Wall time of an operator run, from its admission to its outputs stored.",
    ("executor",),
    buckets=DURATION_BUCKETS,
)
OPERATOR_STAGE_SECONDS = Histogram(
    "aorta_operator_stage_seconds",
    "Time an operator run spent in one stage: staging (inputs), running, storing (outputs).",
    ("stage",),
    buckets=DURATION_BUCKETS,
)

# Triton (the models service)
TRITON_SERVERS = Gauge("aorta_triton_servers", "Triton servers, by state.", ("state",))
TRITON_ACQUIRE_SECONDS = Histogram(
    "aorta_triton_acquire_seconds",
    "Time to hand a job a ready Triton server; warm when one was already running.",
    ("warm",),
    buckets=LATENCY_BUCKETS,
)
MODELS_LOADED = Gauge("aorta_models_loaded", "Models loaded in running Triton servers.")

# Bytes, the bus and events
PAYLOAD_BYTES = Counter(
    "aorta_payload_bytes",
    "Payload bytes moved through the platform, by direction (upload, download).",
    ("direction",),
)
BUS_REQUEST_SECONDS = Histogram(
    "aorta_bus_request_seconds",
    "Time of an internal request over the bus, by the service that answered it.",
    ("subject_service",),
    buckets=LATENCY_BUCKETS,
)
EVENTS_PUBLISHED = Counter("aorta_events_published", "CloudEvents published on the bus.")
EVENTS_PENDING = Gauge(
    "aorta_events_pending", "Events written to the store and not yet published on the bus."
)

# Dead letters (every process whose event consumers give up) and retention (the scheduler leader)
DEAD_LETTERS = Counter(
    "aorta_dead_letters",
    "Events a consumer gave up on and stored as dead letters, by consumer (its durable name) "
    "and the event's entity.",
    ("consumer", "entity"),
)
DEAD_LETTER_FAILURES = Counter(
    "aorta_dead_letter_failures",
    "Dead letters that could not be stored; the event is delivered again later.",
    ("consumer",),
)
RETENTION_REMOVALS = Counter(
    "aorta_retention_removals",
    "Stopped jobs (job) and payloads alone (payload) removed by the retention policy, by the "
    "limit that removed them.",
    ("what", "reason"),
)
RETENTION_FAILURES = Counter(
    "aorta_retention_failures",
    "Removals by the retention policy that failed (the next sweep tries again).",
    ("what",),
)

# GPUs (the monitor)
GPU_UTILIZATION_RATIO = Gauge(
    "aorta_gpu_utilization_ratio", "GPU utilisation from the last sample, 0 to 1.", ("gpu",)
)
GPU_MEMORY_USED_BYTES = Gauge(
    "aorta_gpu_memory_used_bytes", "GPU memory in use at the last sample.", ("gpu",)
)

# Disks (every process that writes to them: the gateway, the monitor) and the log
DISK_USED_RATIO = Gauge(
    "aorta_disk_used_ratio",
    "How full the disk of a folder the platform writes to is, 0 to 1, at its last measure "
    "(new jobs and uploads are refused from AORTA_DISK_WATERMARK).",
    ("path",),
)
LOG_LINES_DROPPED = Counter(
    "aorta_log_lines_dropped",
    "Log lines lost rather than holding up a request: a full queue, a full disk, a failed sink.",
)
