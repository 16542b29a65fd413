"""Settings of the Kubernetes executor and the Kubernetes Triton pool (`AORTA_K8S_*`).

Read from an injected mapping (only a `__main__` reads `os.environ`); every variable is listed in
`KubernetesSettings`' docstring and in docs/kubernetes.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from aorta.settings import EnvReader, SettingsError

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class KubernetesSettings:
    """Where and how operator pods and Triton servers run.

    - `AORTA_K8S_KUBECONFIG`: a kubeconfig file; empty (the default) means the in-cluster
      service account, as a platform service running in a pod uses. `AORTA_K8S_CONTEXT` picks a
      context of the file (default: its current one).
    - `AORTA_K8S_NAMESPACE` (default `aorta-jobs`): the namespace of operator pods and Triton
      servers; the platform's RBAC grants rights there only.
    - `AORTA_K8S_INSTANCE` (default `aorta`): the `app.kubernetes.io/instance` label of every
      object created, so two platforms can share a namespace without adopting each other's pods.
    - `AORTA_K8S_REGISTRY` (default empty): prefix of operator images (`registry/image:tag`);
      Clara definitions name images without their registry.
    - `AORTA_K8S_AGENT_IMAGE` (default `aorta:latest`): the Aorta image, whose `aorta agent
      fetch|push` commands run beside each operator.
    - `AORTA_K8S_AGENT_SERVICE_ACCOUNT` (default `aorta-agent`): the service account whose token
      only the push sidecar mounts, to watch its own pod and read the operator's log.
    - `AORTA_K8S_PULL_SECRETS` (comma-separated, default none): image pull secrets added to every
      pod, before those the pipeline names.
    - `AORTA_K8S_BLOB_SECRET` (default `aorta-blob-credentials`): the Secret in the jobs namespace
      whose keys (`AORTA_S3_ACCESS_KEY`, `AORTA_S3_SECRET_KEY`) the agent containers get as
      environment; empty for none (a local blob store, or credentials from the node).
    - `AORTA_K8S_RUN_AS_NON_ROOT` (default true), `AORTA_K8S_RUN_AS_USER` and
      `AORTA_K8S_RUN_AS_GROUP` (default 1000; `0` leaves the image's own user): the pod's
      security context. Containers never escalate privileges and drop every capability.
    - `AORTA_K8S_FETCH_ALLOWANCE` (seconds, default 600): what a pod may spend fetching its
      inputs before the operator starts; the stage timeout is counted from the operator's start.
    - `AORTA_K8S_TERMINATION_GRACE` (seconds, default 30): what the kubelet gives containers
      after a deadline; the push sidecar uses it to store the operator's log.
    - `AORTA_K8S_WATCH_TIMEOUT` (seconds, default 300): how long one watch request lasts before
      it is resumed from its last resourceVersion.
    - `AORTA_K8S_KEEP_PODS` (default false): keep finished operator pods (for debugging) rather
      than deleting them once their outcome is read.
    - `AORTA_K8S_GPU_RESOURCE` (default `nvidia.com/gpu`): the extended resource GPUs are
      requested as.
    - `AORTA_K8S_SERVICE_STORAGE_CLASS` (default empty: the cluster's default class),
      `AORTA_K8S_SERVICE_DATA_SIZE` (default `1Gi`) and `AORTA_K8S_SERVICE_DATA_ACCESS`
      (default `ReadWriteOnce`; `ReadWriteMany` where operator pods may run on other nodes than
      the service): the PersistentVolumeClaim that holds a pipeline service's data folder.
    """

    kubeconfig: str = ""
    context: str = ""
    namespace: str = "aorta-jobs"
    instance: str = "aorta"
    registry: str = ""
    agent_image: str = "aorta:latest"
    agent_service_account: str = "aorta-agent"
    pull_secrets: tuple[str, ...] = ()
    blob_secret: str = "aorta-blob-credentials"
    run_as_non_root: bool = True
    run_as_user: int = 1000
    run_as_group: int = 1000
    fetch_allowance: int = 600
    termination_grace: int = 30
    watch_timeout: int = 300
    keep_pods: bool = False
    gpu_resource: str = "nvidia.com/gpu"
    service_storage_class: str = ""
    service_data_size: str = "1Gi"
    service_data_access: str = "ReadWriteOnce"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> KubernetesSettings:
        """Reads the settings; `SettingsError` names the variable that is wrong."""
        env = EnvReader(environ)
        settings = cls(
            kubeconfig=env.optional("AORTA_K8S_KUBECONFIG") or "",
            context=env.optional("AORTA_K8S_CONTEXT") or "",
            namespace=env.text("AORTA_K8S_NAMESPACE", cls.namespace),
            instance=env.text("AORTA_K8S_INSTANCE", cls.instance),
            registry=(env.optional("AORTA_K8S_REGISTRY") or "").rstrip("/"),
            agent_image=env.text("AORTA_K8S_AGENT_IMAGE", cls.agent_image),
            agent_service_account=env.text(
                "AORTA_K8S_AGENT_SERVICE_ACCOUNT", cls.agent_service_account
            ),
            pull_secrets=_names(env.optional("AORTA_K8S_PULL_SECRETS") or ""),
            blob_secret=environ.get("AORTA_K8S_BLOB_SECRET", cls.blob_secret),
            run_as_non_root=env.boolean("AORTA_K8S_RUN_AS_NON_ROOT", cls.run_as_non_root),
            run_as_user=env.integer("AORTA_K8S_RUN_AS_USER", cls.run_as_user, minimum=0),
            run_as_group=env.integer("AORTA_K8S_RUN_AS_GROUP", cls.run_as_group, minimum=0),
            fetch_allowance=env.integer(
                "AORTA_K8S_FETCH_ALLOWANCE", cls.fetch_allowance, minimum=0
            ),
            termination_grace=env.integer(
                "AORTA_K8S_TERMINATION_GRACE", cls.termination_grace, minimum=0
            ),
            watch_timeout=env.integer("AORTA_K8S_WATCH_TIMEOUT", cls.watch_timeout, minimum=1),
            keep_pods=env.boolean("AORTA_K8S_KEEP_PODS", cls.keep_pods),
            gpu_resource=env.text("AORTA_K8S_GPU_RESOURCE", cls.gpu_resource),
            service_storage_class=env.optional("AORTA_K8S_SERVICE_STORAGE_CLASS") or "",
            service_data_size=env.text("AORTA_K8S_SERVICE_DATA_SIZE", cls.service_data_size),
            service_data_access=env.choice(
                "AORTA_K8S_SERVICE_DATA_ACCESS",
                cls.service_data_access,
                ("ReadWriteOnce", "ReadWriteMany"),
            ),
        )
        for variable, value in (
            ("AORTA_K8S_NAMESPACE", settings.namespace),
            ("AORTA_K8S_INSTANCE", settings.instance),
        ):
            if len(value) > 63 or not _DNS_LABEL.match(value):
                raise SettingsError(
                    f"setting {variable}={value!r} is not a DNS label (lowercase letters, "
                    "digits and '-', at most 63 characters)"
                )
        return settings


def _names(value: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in value.split(",") if name.strip())
