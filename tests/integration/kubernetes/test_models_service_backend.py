"""`AORTA_TRITON_BACKEND=kubernetes` makes the models service place Triton servers on the
cluster its `AORTA_K8S_*` settings name (here the stand-in API server)."""

from __future__ import annotations

from pathlib import Path

from aorta.bus.memory import MemoryBus
from aorta.runtime.service import service_context
from aorta.settings import Settings
from aorta.testing.kube_api import KubeApiServer
from aorta.triton.kubernetes.backend import KubernetesTritonBackend
from aorta_services.models import app as models_app


async def test_the_models_service_uses_the_kubernetes_backend(tmp_path: Path) -> None:
    async with KubeApiServer() as server:
        kubeconfig = server.kubeconfig(tmp_path / "kubeconfig")
        settings = Settings.from_env({"AORTA_DATA_DIR": str(tmp_path)})
        bus = MemoryBus(default_timeout=5.0)
        async with service_context(settings, bus) as context:
            environ = {
                "AORTA_TRITON_BACKEND": "kubernetes",
                "AORTA_K8S_KUBECONFIG": str(kubeconfig),
                "AORTA_K8S_NAMESPACE": "aorta-jobs",
                "AORTA_K8S_TRITON_REPOSITORY": "s3://minio.aorta.svc:9000/aorta/triton-repository",
            }
            running = await models_app.start(context, environ=environ)
            try:
                assert isinstance(running.backend, KubernetesTritonBackend)
            finally:
                await running.stop(1.0)
                await bus.close()
