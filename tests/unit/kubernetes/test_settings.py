"""`AORTA_K8S_*` and `AORTA_K8S_TRITON_*` settings."""

from __future__ import annotations

import pytest

from aorta.kubernetes.settings import KubernetesSettings
from aorta.settings import Settings, SettingsError
from aorta.testing.kube_schema import check_schema
from aorta.triton.kubernetes.objects import TritonSettings, triton_deployment, triton_service


def test_defaults_and_every_variable() -> None:
    assert KubernetesSettings.from_env({}) == KubernetesSettings()
    settings = KubernetesSettings.from_env(
        {
            "AORTA_K8S_KUBECONFIG": "/etc/aorta/kubeconfig",
            "AORTA_K8S_NAMESPACE": "jobs",
            "AORTA_K8S_REGISTRY": "registry.example/",
            "AORTA_K8S_PULL_SECRETS": "ngc, other ,",
            "AORTA_K8S_BLOB_SECRET": "",
            "AORTA_K8S_RUN_AS_NON_ROOT": "false",
            "AORTA_K8S_RUN_AS_USER": "0",
            "AORTA_K8S_FETCH_ALLOWANCE": "60",
            "AORTA_K8S_KEEP_PODS": "true",
        }
    )
    assert settings.namespace == "jobs" and settings.registry == "registry.example"
    assert settings.pull_secrets == ("ngc", "other") and settings.blob_secret == ""
    assert (settings.run_as_non_root, settings.run_as_user) == (False, 0)
    assert (settings.fetch_allowance, settings.keep_pods) == (60, True)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AORTA_K8S_NAMESPACE", "Jobs_NS"),
        ("AORTA_K8S_INSTANCE", "x" * 64),
        ("AORTA_K8S_WATCH_TIMEOUT", "0"),
        ("AORTA_K8S_KEEP_PODS", "maybe"),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        KubernetesSettings.from_env({variable: value})


def test_triton_reads_the_blob_stores_repository_folder_from_s3() -> None:
    core = Settings.from_env(
        {"AORTA_BLOB_STORE": "s3://aorta/platform", "AORTA_S3_ENDPOINT": "minio:9000"}
    )
    secure = core.with_changes(s3_secure=True)

    assert TritonSettings.from_env({}, core).repository == (
        "s3://minio:9000/aorta/platform/triton-repository"
    )
    assert TritonSettings.from_env({}, secure).repository.startswith("s3://https://minio:9000/")
    explicit = {"AORTA_K8S_TRITON_REPOSITORY": "s3://elsewhere:9000/m"}
    assert TritonSettings.from_env(explicit, core).repository == "s3://elsewhere:9000/m"
    with pytest.raises(SettingsError, match="AORTA_K8S_TRITON_REPOSITORY"):
        TritonSettings.from_env({}, Settings.from_env({}))


@pytest.mark.parametrize("gpus", [1, 0])
def test_triton_objects_validate_against_the_schemas(gpus: int) -> None:
    k8s = KubernetesSettings(pull_secrets=("ngc",))
    triton = TritonSettings(repository="s3://minio:9000/aorta/models", gpus=gpus, region="eu")

    deployment = triton_deployment(k8s, triton, "0f" * 16)
    check_schema(deployment)
    check_schema(triton_service(k8s, "0f" * 16))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert ("nvidia.com/gpu" in container["resources"]["limits"]) is bool(gpus)
    secrets = {e["name"]: e.get("valueFrom") for e in container["env"]}
    assert secrets["AWS_ACCESS_KEY_ID"] == {
        "secretKeyRef": {"name": "aorta-blob-credentials", "key": "AORTA_S3_ACCESS_KEY"}
    }
