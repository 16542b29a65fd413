"""`aorta utilization` shows a process the platform answered without its job (another user's,
for a `user`) by its name alone, and its own job's process with the job."""

from __future__ import annotations

from rich.console import Console

from aorta.api import clara_pb2, common_pb2
from aorta.cli.platform import _gpu_document, _gpu_view

GpuUtilization = clara_pb2.ClaraUtilizationResponse.GpuUtilization
JOB = "0123456789abcdef0123456789abcdef"


def gpu() -> GpuUtilization:
    return GpuUtilization(
        node_id="node-a",
        pcie_id=15104,
        memory_used=1024,
        memory_free=3072,
        process_details=[
            GpuUtilization.ProcessDetails(
                name="segmentation", job_id=common_pb2.Identifier(value=JOB)
            ),
            GpuUtilization.ProcessDetails(name="another user's job"),
        ],
    )


def test_a_process_without_its_job_is_shown_by_its_name() -> None:
    console = Console(record=True, width=200)
    console.print(_gpu_view([gpu()], "localhost:50051"))
    assert "segmentation@01234567, another user's job" in console.export_text()
    assert _gpu_document(gpu())["processes"] == [
        {"name": "segmentation", "job_id": JOB},
        {"name": "another user's job", "job_id": None},
    ]
