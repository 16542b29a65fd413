"""A pipeline written the way Clara's published ones are, run in containers on `aorta up`,
driven by NVIDIA's own client.

Its operators are images with no `command` (their entrypoints run), named outputs are consumed
by `from`/`name`, and each operator reads and writes the absolute paths it declares (`/input`,
`/app/in`, `/app/out`, `/output`). The images are built on this host from busybox (no registry)
and one is known only by a registry's name made with `podman tag`
(`nvcr.io/nvidia/clara/register-results:0.7.2-2010.1`). The platform is `aorta up --executor
container` on a private Podman API service.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from aorta.testing.clara_client import run_clara_python
from aorta.testing.images import build_busybox_image, tag_image
from aorta.testing.podman import PodmanEngine
from aorta.testing.ports import free_port
from tests.e2e.container_platform import containers, start_up, stop

REGISTRY_NAME = "nvcr.io/nvidia/clara/register-results:0.7.2-2010.1"
READER = """\
set -e
echo "dicom-test: reading $(ls /input | wc -l) files from /input"
cp /input/* /app/out/
cd /app/out
sha256sum * > /tmp/manifest.sha256
mv /tmp/manifest.sha256 /app/out/manifest.sha256
echo "dicom-test: done"
"""
MERGER = """\
set -e
echo "series-merge: merging $(ls /app/in/*.dcm | wc -l) slices"
cd /app/in
sha256sum -c manifest.sha256
cat $(ls *.dcm | sort) > /app/out/merged.bin
echo "series-merge: done"
"""
REGISTER = """\
set -e
cp /input/merged.bin /output/registered.bin
wc -c < /input/merged.bin | tr -d ' ' > /output/size.txt
echo "register-results: $(cat /output/size.txt) bytes registered"
"""

PIPELINE = """\
api-version: 0.4.0
name: clara-style
orchestrator: Clara
operators:
- name: dicom-test
  container:
    image: clara/dicom-test
    tag: latest
  input:
  - path: /input
  output:
  - name: series
    path: /app/out
- name: series-merge
  container:
    image: clara/series-merge
    tag: latest
  input:
  - from: dicom-test
    name: series
    path: /app/in
  output:
  - name: merged
    path: /app/out
- name: register-results
  container:
    image: nvcr.io/nvidia/clara/register-results
    tag: 0.7.2-2010.1
  input:
  - from: series-merge
    name: merged
    path: /input
  output:
  - path: /output
"""

CLIENT = """
import base64, json, sys, time
from pathlib import Path
import nvidia_clara.pipeline_types as pipeline_types
from nvidia_clara.jobs_client import JobsClient
from nvidia_clara.payloads_client import PayloadsClient
from nvidia_clara.pipelines_client import PipelinesClient

target, definition, inputs, results = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
jobs_client, payloads_client = JobsClient(target), PayloadsClient(target)
pipelines_client = PipelinesClient(target)
seen = {}
files = [pipeline_types.PipelineDefinition(name="clara-style.yaml", content=definition)]
pipeline_id = pipelines_client.create_pipeline(definition=files)
job = jobs_client.create_job(
    job_name="clara-style", pipeline_id=pipeline_types.PipelineId(pipeline_id.value)
)
for path in sorted(inputs.iterdir()):
    with path.open("rb") as data:
        payloads_client.upload(payload_id=job.payload_id, blob_name=path.name, file_object=data)
jobs_client.start_job(job_id=job.job_id)
deadline = time.monotonic() + 150
status = jobs_client.get_status(job_id=job.job_id)
while status.job_state != 3 and time.monotonic() < deadline:
    time.sleep(0.2)
    status = jobs_client.get_status(job_id=job.job_id)
seen["job_id"] = job.job_id.value
seen["status"] = [status.job_state, status.job_status, list(status.messages)]
seen["operators"] = {name: d["status"] for name, d in status.operator_details.items()}
details = payloads_client.get_details(payload_id=job.payload_id)
seen["files"] = sorted(f.name for f in details.file_details)
for index, name in enumerate(seen["files"]):
    if name.startswith("/operators/"):
        target_file = results / str(index)
        with open(target_file, "wb") as out:
            payloads_client.download_from(
                payload_id=job.payload_id, blob_name="." + name, dest_obj=out
            )
        seen.setdefault("downloaded", {})[name] = str(target_file)
seen["logs"] = {
    name: jobs_client.job_logs(job_id=job.job_id, operator_name=name)
    for name in ("dicom-test", "series-merge", "register-results")
}
print(json.dumps(seen))
"""


def build_images(engine: PodmanEngine) -> None:
    """The three operators' images in the engine's storage, as a user builds them locally."""
    cli = engine.cli
    build_busybox_image(cli, "clara/dicom-test:latest", READER)
    build_busybox_image(cli, "clara/series-merge:latest", MERGER)
    build_busybox_image(cli, "aorta/register-results:latest", REGISTER)
    tag_image(
        cli, "aorta/register-results:latest", "nvcr.io/nvidia/clara/register-results:0.7.2-2010.1"
    )


def slices(folder: Path) -> dict[str, bytes]:
    """Two binary 'DICOM slices' holding every byte value, written to `folder`."""
    folder.mkdir()
    made = {
        "slice-1.dcm": bytes(range(256)) * 33 + b"\r\n\0",
        "slice-2.dcm": hashlib.sha512(b"second").digest() * 700,
    }
    for name, data in made.items():
        (folder / name).write_bytes(data)
    return made


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_clara_style_pipeline_runs_in_containers_through_nvidias_client(
    podman_engine: PodmanEngine, tmp_path: Path
) -> None:
    build_images(podman_engine)
    made = slices(tmp_path / "inputs")
    results = tmp_path / "results"
    results.mkdir()
    port = free_port()
    log = tmp_path / "aorta-up.log"
    platform = start_up(podman_engine, tmp_path / "platform", port, log)
    try:
        done = run_clara_python(
            CLIENT,
            args=[f"127.0.0.1:{port}", PIPELINE, str(tmp_path / "inputs"), str(results)],
            timeout=240,
        )
    finally:
        status = stop(platform)
    assert done.returncode == 0, f"{done.stderr}\n{log.read_text()[-4000:]}"
    seen = json.loads(done.stdout)
    assert seen["status"] == [3, 1, []], f"{seen}\n{log.read_text()[-4000:]}"
    assert seen["operators"] == {"dicom-test": 3, "series-merge": 3, "register-results": 3}
    downloaded = {name: Path(path).read_bytes() for name, path in seen["downloaded"].items()}
    by_file = {name.rsplit("/", 1)[1]: data for name, data in downloaded.items()}
    assert by_file["slice-1.dcm"] == made["slice-1.dcm"]
    assert by_file["slice-2.dcm"] == made["slice-2.dcm"]
    merged = made["slice-1.dcm"] + made["slice-2.dcm"]
    assert by_file["merged.bin"] == merged
    assert by_file["registered.bin"] == merged
    assert by_file["size.txt"] == f"{len(merged)}\n".encode()
    assert "slice-1.dcm: OK" in seen["logs"]["series-merge"]
    assert seen["logs"]["register-results"] == [f"register-results: {len(merged)} bytes registered"]
    # Each operator ran once, in a container of the image its definition names.
    for operator, image in (
        ("dicom-test", "clara/dicom-test:latest"),
        ("series-merge", "clara/series-merge:latest"),
        ("register-results", REGISTRY_NAME),
    ):
        made_for = containers(
            podman_engine, **{"aorta.job": seen["job_id"], "aorta.operator": operator}
        )
        assert len(made_for) == 1, made_for
        assert image in str(made_for[0]["Image"]), made_for
    assert status == 0, log.read_text()[-4000:]
