"""Bus subject names: the one list both the gateway and the services read.

Commands are request/reply on `aorta.rpc.<service>.<verb>`, served with the service name as the
queue group so N replicas share the load. Events live under `aorta.events.` (see aorta.bus.events).

Each verb below says what it takes and answers. A Clara message name is that message,
serialized (forwarded as it is by the gateway). A verb internal to the platform names its
contract in `aorta.contracts` (same name as the subject), which declares its request and answer
types once for both sides; those carry JSON.
"""

from __future__ import annotations

RPC_PREFIX = "aorta.rpc"


def rpc(service: str, verb: str) -> str:
    """The subject on which `service` answers `verb` (both lower-case, dotted words)."""
    return f"{RPC_PREFIX}.{service}.{verb}"


# GPU samples published by every node's monitor (core pub/sub, not persisted).
GPU_SAMPLES = "aorta.metrics.gpu"

AUDIT_PREFIX = "aorta.audit"
"""The gateway publishes each audit record (a CloudEvent) on `aorta.audit.<service>.<method>`
(core pub/sub, best effort: the record in the state store is the one that counts)."""


def audit(service: str, method: str) -> str:
    """Where an audit record of `service`'s `method` is published (lower-case tokens)."""
    return f"{AUDIT_PREFIX}.{service}.{method}"


# The monitor: Clara's platform verbs and the node's GPUs.
CLARA_VERSION = rpc("clara", "version")
"""ClaraVersionRequest -> ClaraVersionResponse."""
CLARA_UTILIZATION = rpc("clara", "utilization")
"""ClaraUtilizationRequest -> stream of ClaraUtilizationResponse."""
CLARA_STOP = rpc("clara", "stop")
"""ClaraStopRequest -> ClaraStopResponse: asks every `*_PLATFORM_STOP` below (see its docs)."""
MONITOR_GPU_METRICS = rpc("monitor", "gpu_metrics")
"""MonitorGpuMetricsRequest -> stream of MonitorGpuMetricsResponse."""

# The pipelines service (aorta_services.pipelines).
PIPELINES_CREATE = rpc("pipelines", "create")
"""CreatePipeline -> PipelinesCreateResponse: a definition the gateway joined."""
PIPELINES_UPDATE = rpc("pipelines", "update")
"""UpdatePipeline -> PipelinesUpdateResponse: a definition the gateway joined."""
PIPELINES_DETAILS = rpc("pipelines", "details")
"""PipelinesDetailsRequest -> stream of PipelinesDetailsResponse."""
PIPELINES_LIST = rpc("pipelines", "list")
"""PipelinesListRequest -> stream of PipelinesListResponse."""
PIPELINES_REMOVE = rpc("pipelines", "remove")
"""PipelinesRemoveRequest -> PipelinesRemoveResponse."""
PIPELINES_ADD_METADATA = rpc("pipelines", "add_metadata")
"""PipelinesAddMetadataRequest -> PipelinesAddMetadataResponse."""
PIPELINES_REMOVE_METADATA = rpc("pipelines", "remove_metadata")
"""PipelinesRemoveMetadataRequest -> PipelinesRemoveMetadataResponse."""
PIPELINES_SNAPSHOT = rpc("pipelines", "snapshot")
"""SnapshotRequest -> PipelineSnapshot: what a job freezes."""

# The payloads service (aorta_services.payloads).
PAYLOADS_CREATE = rpc("payloads", "create")
"""PayloadsCreateRequest -> PayloadsCreateResponse."""
PAYLOADS_DELETE = rpc("payloads", "delete")
"""PayloadsDeleteRequest -> PayloadsDeleteResponse."""
PAYLOADS_DETAILS = rpc("payloads", "details")
"""PayloadsDetailsRequest -> stream of PayloadsDetailsResponse."""
PAYLOADS_REMOVE = rpc("payloads", "remove")
"""PayloadsRemoveRequest -> PayloadsRemoveResponse."""
PAYLOADS_ADD_METADATA = rpc("payloads", "add_metadata")
"""PayloadsAddMetadataRequest -> PayloadsAddMetadataResponse."""
PAYLOADS_REMOVE_METADATA = rpc("payloads", "remove_metadata")
"""PayloadsRemoveMetadataRequest -> PayloadsRemoveMetadataResponse."""
PAYLOADS_CHECK_UPLOAD = rpc("payloads", "check_upload")
"""CheckUpload -> UploadAllowed: files may be uploaded now."""
PAYLOADS_FILE_ADDED = rpc("payloads", "file_added")
"""FileAdded -> Done: the gateway stored an uploaded file."""
PAYLOADS_LOCATE = rpc("payloads", "locate")
"""Locate -> Located: the file a Download names."""
PAYLOADS_CREATE_FOR_JOB = rpc("payloads", "create_for_job")
"""CreateForJob -> CreatedForJob: a PIPELINE payload, reusable inputs copied."""
PAYLOADS_LOCK = rpc("payloads", "lock")
"""JobPayload -> Done: the job started; its payload is read-only and in use."""
PAYLOADS_RELEASE = rpc("payloads", "release")
"""JobPayload -> Done: the job stopped; its payload may be deleted again."""
PAYLOADS_DISCARD_FOR_JOB = rpc("payloads", "discard_for_job")
"""DiscardForJob -> Discarded: the job was never revealed; its PIPELINE payload goes."""
PAYLOADS_DELETE_FOR_JOB = rpc("payloads", "delete_for_job")
"""DiscardForJob -> Discarded: the stopped job is being deleted; its PIPELINE payload goes."""

# The scheduler (aorta_services.scheduler): Clara's Jobs verbs, on any replica.
SCHEDULER_CREATE = rpc("scheduler", "create")
"""JobsCreateRequest -> JobsCreateResponse."""
SCHEDULER_START = rpc("scheduler", "start")
"""JobsStartRequest -> JobsStartResponse."""
SCHEDULER_STATUS = rpc("scheduler", "status")
"""JobsStatusRequest -> JobsStatusResponse."""
SCHEDULER_LIST = rpc("scheduler", "list")
"""JobsListRequest -> stream of JobsListResponse."""
SCHEDULER_CANCEL = rpc("scheduler", "cancel")
"""JobsCancelRequest -> JobsCancelResponse."""
SCHEDULER_READ_LOGS = rpc("scheduler", "read_logs")
"""JobsReadLogsRequest -> stream of JobsReadLogsResponse."""
SCHEDULER_ADD_METADATA = rpc("scheduler", "add_metadata")
"""JobsAddMetadataRequest -> JobsAddMetadataResponse."""
SCHEDULER_REMOVE_METADATA = rpc("scheduler", "remove_metadata")
"""JobsRemoveMetadataRequest -> JobsRemoveMetadataResponse."""
SCHEDULER_DELETE = rpc("scheduler", "delete")
"""aorta.v1 JobsDeleteRequest -> JobsDeleteResponse: a stopped job, its logs and payload go."""
SCHEDULER_TIMELINE = rpc("scheduler", "timeline")
"""aorta.v1 JobsTimelineRequest -> JobsTimelineResponse: when each stage of a job happened."""
SCHEDULER_PAGE = rpc("scheduler", "page")
"""aorta.v1 JobsPageRequest -> JobsPageResponse: one page of jobs from a cursor."""
SCHEDULER_QUEUE = rpc("scheduler", "queue")
"""aorta.v1 JobsQueueRequest -> stream of JobsQueueResponse: queued jobs, admission order."""
SCHEDULER_SERVICES = rpc("scheduler", "services")
"""aorta.v1 ServicesListRequest -> stream of ServicesListResponse: the pipeline services."""
SCHEDULER_SERVICE_LOGS = rpc("scheduler", "service_logs")
"""aorta.v1 ServicesReadLogsRequest -> stream of ServicesReadLogsResponse: a service's log."""
SCHEDULER_PLATFORM_STOP = rpc("scheduler", "platform_stop")
"""PlatformStop -> PlatformStopped: Clara.Stop; every queued and running job is STOPPED."""
SCHEDULER_LEADER_LOGS = rpc("scheduler", "leader_logs")
"""LeaderLogs -> stream of LogLines: a live run's lines, served only by the leading replica."""
SCHEDULER_READABLE_JOBS = rpc("scheduler", "readable_jobs")
"""JobIds -> JobIds: those of the jobs the caller may read (Status's rule), which the monitor
names in Clara.Utilization."""

# The models service (aorta_services.models): the model repository and the Triton pool.
MODELS_UPLOAD = rpc("models", "upload")
"""UploadModel -> ModelsUploadModelResponse: an archive the gateway staged in the blob store."""
MODELS_DOWNLOAD = rpc("models", "download")
"""ModelsDownloadModelRequest -> ModelLocation: where the archive lies."""
MODELS_LIST = rpc("models", "list")
"""ModelsListModelsRequest -> stream of ModelsListModelsResponse."""
MODELS_DELETE = rpc("models", "delete")
"""ModelsDeleteModelRequest -> ModelsDeleteModelResponse."""
MODELS_ADD_METADATA = rpc("models", "add_metadata")
"""ModelsAddMetadataRequest -> ModelsAddMetadataResponse."""
MODELS_REMOVE_METADATA = rpc("models", "remove_metadata")
"""ModelsRemoveMetadataRequest -> ModelsRemoveMetadataResponse."""
MODELS_CREATE_CATALOG = rpc("models", "create_catalog")
"""ModelsCreateCatalogRequest -> ModelsCreateCatalogResponse."""
MODELS_DELETE_CATALOG = rpc("models", "delete_catalog")
"""ModelsDeleteCatalogRequest -> ModelsDeleteCatalogResponse."""
MODELS_LIST_CATALOGS = rpc("models", "list_catalogs")
"""ModelsListCatalogsRequest -> stream of ModelsListCatalogsResponse."""
MODELS_READ_CATALOG = rpc("models", "read_catalog")
"""ModelsReadCatalogRequest -> stream of ModelsReadCatalogResponse."""
MODELS_UPDATE_CATALOG = rpc("models", "update_catalog")
"""UpdateModelList -> ModelsUpdateCatalogResponse: the client stream, joined by the gateway."""
MODELS_CREATE_INSTANCE = rpc("models", "create_instance")
"""ModelsCreateInstanceRequest -> ModelsCreateInstanceResponse."""
MODELS_DELETE_INSTANCE = rpc("models", "delete_instance")
"""ModelsDeleteInstanceRequest -> ModelsDeleteInstanceResponse."""
MODELS_LIST_INSTANCES = rpc("models", "list_instances")
"""ModelsListInstancesRequest -> stream of ModelsListInstancesResponse."""
MODELS_READ_INSTANCE = rpc("models", "read_instance")
"""ModelsReadInstanceRequest -> stream of ModelsReadInstanceResponse."""
MODELS_UPDATE_INSTANCE = rpc("models", "update_instance")
"""UpdateModelList -> ModelsUpdateInstanceResponse: the client stream, joined by the gateway."""
MODELS_ACQUIRE_TRITON = rpc("models", "acquire_triton")
"""AcquireTriton -> TritonServer: a server with those models, for this job."""
MODELS_RELEASE_TRITON = rpc("models", "release_triton")
"""ReleaseTriton -> Done: the job stopped; its servers return to the pool."""
MODELS_PLATFORM_STOP = rpc("models", "platform_stop")
"""PlatformStop -> PlatformStopped: Clara.Stop; every pooled Triton server stops."""
