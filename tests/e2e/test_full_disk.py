"""`aorta up` on a small disk that fills up: a tmpfs of 256 MiB mounted by the test (tests run
as root), unmounted whatever happens.

While a job runs, the disk is filled past the watermark: new uploads and new jobs are refused
with "disk nearly full" naming the data dir, reads keep working, and the running job finishes.
The platform is then stopped, the disk filled to the last byte, and `aorta up` started again
on it: it starts, serves reads and still refuses new work with the same clear error.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from aorta.api import (
    common_pb2,
    jobs_pb2,
    jobs_pb2_grpc,
    payloads_pb2,
    payloads_pb2_grpc,
    pipelines_pb2,
    pipelines_pb2_grpc,
)
from aorta.errors import ErrorCode
from aorta.testing.embedded import aorta_up
from aorta.testing.ports import restart_safe_port

DISK_BYTES = 256 << 20
OPERATOR = """\
import os, pathlib, time

release = pathlib.Path(os.environ["RELEASE"])
while not release.exists():
    time.sleep(0.05)
for entry in clara_payload.output_entries:
    folder = pathlib.Path(entry.path)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.txt").write_text("done")
"""


def definition(script: Path, release: Path) -> str:
    return (
        "api-version: 0.4.0\n"
        "name: full-disk\n"
        "operators:\n"
        "- name: wait\n"
        f"  container: {{image: python, command: [python, -u, -m, aorta.driver.app, {script}]}}\n"
        "  input: [{path: /input}]\n"
        "  output: [{path: /output}]\n"
        "  requests: {cpu: 1, memory: 256}\n"
        f'  variables: {{RELEASE: "{release}"}}\n'
    )


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES},mode=0700", "tmpfs", str(mount)],
        check=True,
    )
    try:
        yield mount
    finally:
        # Lazily, so a process that still holds a file there cannot keep the mount.
        subprocess.run(["umount", "-l", str(mount)], check=True)


def used_ratio(folder: Path) -> float:
    stats = os.statvfs(folder)
    return 1 - stats.f_bavail / stats.f_blocks


def fill(disk: Path, name: str, up_to: float | None) -> None:
    """Writes ballast on `disk` until it is `up_to` full (None: until it takes no more, even
    the last block)."""
    descriptor = os.open(disk / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            while up_to is None or used_ratio(disk) < up_to:
                try:
                    os.write(descriptor, b"\0" * size)
                except OSError:
                    break
    finally:
        os.close(descriptor)


class Platform:
    """The public API of the platform under test, through our own stubs."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.jobs = jobs_pb2_grpc.JobsStub(channel)
        self.pipelines = pipelines_pb2_grpc.PipelinesStub(channel)
        self.payloads = payloads_pb2_grpc.PayloadsStub(channel)

    def pipeline(self, text: str) -> common_pb2.Identifier:
        file = pipelines_pb2.PipelineDefinitionFile(path="p.yaml", content=text)
        created = self.pipelines.Create(
            iter([pipelines_pb2.PipelinesCreateRequest(definition=file)]), timeout=30
        )
        assert created.header.code == 0, created.header
        return created.pipeline_id

    def create_job(self, pipeline_id: common_pb2.Identifier) -> jobs_pb2.JobsCreateResponse:
        return self.jobs.Create(
            jobs_pb2.JobsCreateRequest(pipeline_id=pipeline_id, name="full-disk"), timeout=30
        )

    def upload(self, payload_id: common_pb2.Identifier) -> payloads_pb2.PayloadsUploadResponse:
        request = payloads_pb2.PayloadsUploadRequest(
            payload_id=payload_id,
            details=payloads_pb2.PayloadFileDetails(name="scan.dcm", size=4),
            data=b"scan",
        )
        return self.payloads.Upload(iter([request]), timeout=30)

    def status(self, job_id: common_pb2.Identifier) -> jobs_pb2.JobsStatusResponse:
        answer = self.jobs.Status(jobs_pb2.JobsStatusRequest(job_id=job_id), timeout=30)
        assert answer.header.code == 0, answer.header
        return answer

    def listed(self) -> list[str]:
        listed = []
        for answer in self.jobs.List(jobs_pb2.JobsListRequest(), timeout=30):
            assert answer.header.code == 0, answer.header
            if answer.HasField("job_details"):
                listed.append(answer.job_details.job_id.value)
        return listed

    def stopped(
        self, job_id: common_pb2.Identifier, within: float = 60.0
    ) -> jobs_pb2.JobsStatusResponse:
        deadline = time.monotonic() + within
        while (status := self.status(job_id)).state != jobs_pb2.JOB_STATE_STOPPED:
            assert time.monotonic() < deadline, f"the job did not stop: {status}"
            time.sleep(0.1)
        return status


def refused(header: common_pb2.ResponseHeader, code: ErrorCode, data_dir: Path) -> None:
    assert header.code == code, header
    message = "\n".join(header.messages)
    assert message.startswith(f"disk nearly full: {data_dir} is on a disk "), message
    assert "above the watermark of 90%" in message
    assert "AORTA_DISK_WATERMARK" in message


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_full_disk_refuses_new_work_serves_reads_and_still_starts(
    tmp_path: Path, small_disk: Path
) -> None:
    # The disk is the data dir, so `aorta up`'s output lands beside it, on a disk with room.
    data_dir = small_disk
    side = tmp_path / "side"
    side.mkdir()
    script = side / "wait.py"
    script.write_text(OPERATOR)
    release = side / "release"
    port = restart_safe_port()
    environ = {"AORTA_DISK_WATERMARK": "90", "AORTA_SCHEDULER_GPUS": "0"}
    with (
        aorta_up(data_dir, port, environ=environ),
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        platform = Platform(channel)
        pipeline_id = platform.pipeline(definition(script, release))
        running = platform.create_job(pipeline_id)
        assert running.header.code == 0, running.header
        assert platform.upload(running.payload_id).header.code == 0
        started = platform.jobs.Start(jobs_pb2.JobsStartRequest(job_id=running.job_id), timeout=30)
        assert started.header.code == 0, started.header
        waiting = platform.create_job(pipeline_id)
        assert waiting.header.code == 0, waiting.header

        fill(small_disk, "ballast", up_to=0.95)

        refused(platform.upload(waiting.payload_id).header, ErrorCode.PAYLOAD_STORE_ERROR, data_dir)
        refused(platform.create_job(pipeline_id).header, ErrorCode.JOB_STORE_ERROR, data_dir)
        start = platform.jobs.Start(jobs_pb2.JobsStartRequest(job_id=waiting.job_id), timeout=30)
        refused(start.header, ErrorCode.JOB_STORE_ERROR, data_dir)
        assert set(platform.listed()) == {running.job_id.value, waiting.job_id.value}
        assert platform.status(waiting.job_id).state == jobs_pb2.JOB_STATE_PENDING

        release.touch()
        finished = platform.stopped(running.job_id)
        assert finished.status == jobs_pb2.JOB_STATUS_HEALTHY, list(finished.messages)

    fill(small_disk, "more-ballast", up_to=None)
    assert used_ratio(small_disk) == 1.0

    with (
        aorta_up(data_dir, port, environ=environ),
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        platform = Platform(channel)
        assert set(platform.listed()) == {running.job_id.value, waiting.job_id.value}
        assert platform.status(running.job_id).status == jobs_pb2.JOB_STATUS_HEALTHY
        refused(platform.create_job(pipeline_id).header, ErrorCode.JOB_STORE_ERROR, data_dir)
        refused(platform.upload(waiting.payload_id).header, ErrorCode.PAYLOAD_STORE_ERROR, data_dir)
