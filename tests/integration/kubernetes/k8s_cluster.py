"""What the Kubernetes tests work with: a cluster (the stand-in API server with a simulated
kubelet, or a real one), the platform's view of it, and runs that play a `Play`."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field

from aorta.blobs import BlobStore
from aorta.executors.kubernetes.executor import KubernetesExecutor, agent_environment
from aorta.executors.port import OperatorRun, Resources, VolumeBinding
from aorta.kubernetes.api import KubeApi
from aorta.kubernetes.settings import KubernetesSettings
from aorta.payload_layout import input_prefix, operator_log_key, operator_output_prefix
from aorta.settings import Settings
from aorta.testing.kube_api import KubeApiServer
from tests.integration.kubernetes.k8s_kubelet import Play, SimulatedKubelet

REAL_KUBECONFIG = os.environ.get("AORTA_TEST_KUBECONFIG", "")
NAMESPACE = "aorta-jobs"


@dataclass
class Cluster:
    """A cluster, the platform's view of it, and a way to make runs that play a `Play`."""

    kind: str
    api: KubeApi
    settings: KubernetesSettings
    core: Settings
    blobs: BlobStore
    server: KubeApiServer | None = None
    kubelet: SimulatedKubelet | None = None
    operator_image: tuple[str, str] = ("busybox", "1.36")
    executors: list[KubernetesExecutor] = field(default_factory=list)

    def executor(self) -> KubernetesExecutor:
        """A fresh executor on this cluster (closed by the fixture)."""
        made = KubernetesExecutor(self.api, self.blobs, self.settings, agent_environment(self.core))
        self.executors.append(made)
        return made

    def run(
        self,
        play: Play,
        *,
        operator: str = "reader",
        job_id: str | None = None,
        payload_id: str | None = None,
        attempt: int = 0,
        gpu: int = 0,
        timeout: float = 60.0,
    ) -> OperatorRun:
        """A run of `operator` reading the payload's input and writing one output, that
        plays `play` (simulated, or as a busybox script on a real cluster)."""
        job = job_id or uuid.uuid4().hex
        payload = payload_id or uuid.uuid4().hex
        inputs = (VolumeBinding("payload", "/input", input_prefix(payload)),)
        outputs = (
            VolumeBinding(operator, "/output", operator_output_prefix(payload, operator, None)),
        )
        run_id = f"{job}-{operator}-{attempt}"
        image, tag = self.operator_image
        run = OperatorRun(
            run_id=run_id,
            job_id=job,
            job_name="k8s-test",
            payload_id=payload,
            operator=operator,
            attempt=attempt,
            image=image,
            tag=tag,
            command=("sh", "-c", play.script(["/input"], ["/output"])),
            inputs=inputs,
            outputs=outputs,
            resources=Resources(cpu=1, gpu=gpu, memory_mb=256),
            timeout=timeout,
            log_key=operator_log_key(job, operator),
        )
        if self.kubelet is not None:
            self.kubelet.plays[run_id] = play
        return run
