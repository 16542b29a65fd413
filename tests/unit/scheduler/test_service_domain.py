"""Pipeline services in the scheduler's domain: which services a job needs, how jobs share one,
when an idle one is due to stop, and what admission makes of their requests."""

from __future__ import annotations

from aorta.executors.services import service_key
from aorta.pipeline_spec import Pipeline, load_pipeline
from aorta_services.scheduler.domain import Capacity, Request
from aorta_services.scheduler.domain.resources import Allocation
from aorta_services.scheduler.domain.services import (
    ServiceRecord,
    ServiceState,
    declared_services,
    joined,
    launch_of,
    left,
    never_fits,
    operator_connections,
    services_of_operator,
    stop_due,
)

TRTIS = """\
  services:
  - name: trtis
    container:
      image: nvcr.io/trtis
      tag: "19.08"
      command: [trtserver, "--model-store=$(NVIDIA_CLARA_SERVICE_DATA_PATH)"]
    requests: {gpu: GPUS, memory: 2048}
    connections:
      http: [{name: NVIDIA_CLARA_TRTISURI, port: 8000}]
      volume: [{name: MODELS, path: /models}]
"""


STORE_ARG = "--model-store=$(NVIDIA_CLARA_SERVICE_DATA_PATH)"


def pipeline(*, gpus: int = 0, second_command: str = STORE_ARG) -> Pipeline:
    service = TRTIS.replace("GPUS", str(gpus))
    other = service.replace(STORE_ARG, second_command)
    text = (
        "api-version: 0.4.0\nname: covid\noperators:\n"
        "- name: segment\n  container: {image: seg, command: [python, seg.py]}\n"
        "  input: [{path: /input}]\n  output: [{path: /output}]\n"
        + service
        + "- name: classify\n  container: {image: cls, command: [python, cls.py]}\n"
        "  input: [{from: segment, path: /input}]\n  output: [{path: /output}]\n" + other
    )
    return load_pipeline({"p.yml": text}, root="p.yml").pipeline


def test_the_same_image_tag_and_command_is_one_service_for_every_operator() -> None:
    services = declared_services(pipeline())
    assert len(services) == 1
    (trtis,) = services
    command = ("trtserver", STORE_ARG)
    assert trtis.service_id == service_key("nvcr.io/trtis", "19.08", command)
    assert trtis.operators == ("segment", "classify")
    assert trtis.request == Request(cpu=2, gpu=0, memory_mb=2048)
    assert services_of_operator(pipeline(), "classify") == services


def test_a_different_command_is_another_service() -> None:
    services = declared_services(pipeline(second_command="--strict-readiness"))
    assert [s.operators for s in services] == [("segment",), ("classify",)]
    assert services[0].service_id != services[1].service_id


def test_jobs_join_and_leave_and_the_last_leaving_starts_the_idle_period() -> None:
    (declared,) = declared_services(pipeline())
    record = ServiceRecord.first(declared, now=0.0)
    record = joined(record, "job-a", "pipe-1", now=10.0)
    record = joined(record, "job-b", "pipe-2", now=11.0)
    record = joined(record, "job-a", "pipe-1", now=12.0)
    assert record.users == ("job-a", "job-b")
    assert record.pipelines == ("pipe-1", "pipe-2")
    ready = ServiceRecord.from_document({**record.to_document(), "state": ServiceState.READY.value})
    assert stop_due(ready, now=10_000.0, idle_seconds=60.0) is None
    one_left = left(ready, ["job-a"], now=20.0)
    assert one_left.users == ("job-b",)
    assert stop_due(one_left, now=10_000.0, idle_seconds=60.0) is None
    idle = left(one_left, ["job-b"], now=30.0)
    assert idle.idle_since() == 30.0
    assert stop_due(idle, now=89.0, idle_seconds=60.0) is None
    assert stop_due(idle, now=90.0, idle_seconds=60.0) == "no job used it for 60 s"


def test_clara_stop_is_due_at_once_even_while_jobs_use_the_service() -> None:
    (declared,) = declared_services(pipeline())
    record = joined(ServiceRecord.first(declared, now=0.0), "job-a", "p", now=1.0)
    ready = ServiceRecord.from_document(
        {**record.to_document(), "state": "ready", "stop_requested": True}
    )
    assert stop_due(ready, now=1.0, idle_seconds=600.0) == "the platform was stopped (Clara.Stop)"
    stopped = ServiceRecord.from_document({**ready.to_document(), "state": "stopped"})
    assert stop_due(stopped, now=1.0, idle_seconds=600.0) is None


def test_a_record_survives_the_store_round_trip() -> None:
    (declared,) = declared_services(pipeline())
    record = joined(ServiceRecord.first(declared, now=5.0), "job-a", "p", now=6.0)
    document = record.to_document()
    document["version"] = 3
    assert ServiceRecord.from_document(document) == ServiceRecord.from_document(
        ServiceRecord.from_document(document).to_document() | {"version": 3}
    )
    assert ServiceRecord.from_document(document).command == declared.spec.container.command


def test_a_service_needing_a_gpu_never_fits_a_node_without_one() -> None:
    services = declared_services(pipeline(gpus=1))
    none = Capacity(gpus=(), cpu=4, memory_mb=8192)
    reason = never_fits(none, services, Request(cpu=1, gpu=0, memory_mb=512))
    assert reason is not None
    assert "'trtis'" in reason and "1 GPU(s)" in reason and "has 0" in reason
    one = Capacity(gpus=(0,), cpu=4, memory_mb=8192)
    assert never_fits(one, services, Request(cpu=1, gpu=0, memory_mb=512)) is None
    # The service and the job's most demanding operator hold their GPUs at once.
    assert never_fits(one, services, Request(cpu=1, gpu=1, memory_mb=512)) is not None


def test_the_launch_and_what_operators_get() -> None:
    (declared,) = declared_services(pipeline(gpus=1))
    launch = launch_of(declared, Allocation(gpus=(3,), cpu=2, memory_mb=2048), ready_timeout=9.0)
    assert launch.resources.gpu_devices == (3,)
    assert [(h.name, h.port) for h in launch.http] == [("NVIDIA_CLARA_TRTISURI", 8000)]
    assert [(v.name, v.path) for v in launch.volumes] == [("MODELS", "/models")]
    assert launch.log_key == f"logs/services/{declared.service_id}.log"
    record = ServiceRecord.from_document(
        {
            **ServiceRecord.first(declared, now=0.0).to_document(),
            "state": "ready",
            "environment": {"NVIDIA_CLARA_TRTISURI": "10.0.0.5:8000", "MODELS": "/models"},
            "mounts": [{"source": "svc-data", "path": "/models"}],
        }
    )
    assert record.address == "10.0.0.5:8000"
    environment, mounts = operator_connections([record])
    assert environment == {"NVIDIA_CLARA_TRTISURI": "10.0.0.5:8000", "MODELS": "/models"}
    assert [(m.source, m.path) for m in mounts] == [("svc-data", "/models")]
