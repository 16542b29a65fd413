"""The operator SDK as jobs run it: Python scripts using the pipeline driver, started by the
platform (gateway, pipelines, payloads and scheduler with the real local executor, on a real
nats-server) and driven by NVIDIA's own client (`nvidia-clara-client`), as a Clara user would.

1. Clara's two-operator example (docs/clara-compatibility.md, "The pipeline driver
   life-cycle"): each operator records the `clara_payload` entries it is handed (names, paths,
   whether each path exists) and every file it reads, into its output; the test downloads those
   records and checks each name exactly.
2. An operator written for Clara (`import clara`, `clara.Driver`, the `clara_payload` global)
   runs unmodified as a job operator under `nvidia_clara_pipeline_driver.app` and on the host
   with `aorta operator run-local`, in the folder `aorta operator init` made; both give the
   same output.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path, PurePosixPath

import pytest
import yaml

from tests.e2e.sdk_jobs_platform import run_job

AORTA = Path(sys.executable).parent / "aorta"
RECORDING_OPERATOR = """\
import json, pathlib

from aorta.driver import Driver


def describe(entries):
    return [
        {"name": e.name, "path": e.path, "exists": pathlib.Path(e.path).exists()}
        for e in entries
    ]


def contents(entries):
    found = {}
    for entry in entries:
        root = pathlib.Path(entry.path)
        for path in sorted(root.rglob("*")):
            if path.is_file():
                found[f"{entry.name}:{path.relative_to(root).as_posix()}"] = path.read_text()
    return found


def execute(driver, payload):
    seen = {
        "stage": driver.stage_name,
        "job_id": driver.job_id.hex,
        "inputs": describe(clara_payload.input_entries),
        "outputs": describe(clara_payload.output_entries),
        "execute_got_clara_payload": payload == clara_payload,
        "read": contents(clara_payload.input_entries),
    }
    for entry in clara_payload.output_entries:
        folder = pathlib.Path(entry.path)
        (folder / f"{driver.stage_name}.txt").write_text(f"written by {driver.stage_name}\\n")
        (folder / "seen.json").write_text(json.dumps(seen, indent=1))


driver = Driver(execute_handler=execute)
driver.start()
driver.wait_for_completion()
"""

TWO_OPERATORS = """\
api-version: 0.4.0
name: two-operators
orchestrator: Clara
operators:
- name: operator1
  container:
    image: operator1
    command: [python, -u, -m, aorta.driver.app, {script}]
  input:
  - path: /pipeline_input
  output:
  - name: segmentation-output
    path: /output
- name: operator2
  container:
    image: operator2
    command: [python, -u, -m, aorta.driver.app, {script}]
  input:
  - from: operator1
    name: segmentation-output
    path: /input
  output:
  - name: final-output
    path: /output
"""

CLARA_OPERATOR = b'''\
"""A Clara operator: counts the words of its input files."""

import json
from collections import Counter
from pathlib import Path

import clara


def names_and_paths(entries):
    return [(entry.name, entry.path) for entry in entries]


def execute(driver, payload):
    counts = Counter()
    for entry in payload.input_entries:
        for path in sorted(Path(entry.path).glob("*.txt")):
            counts.update(path.read_text().split())
    output = Path(clara_payload.output_entries[0].path)
    lines = [f"{word} {count}" for word, count in sorted(counts.items())]
    (output / "counts.txt").write_text("\\n".join(lines) + "\\n")
    entries = {
        "stage": driver.stage_name,
        "inputs": [entry.name for entry in clara_payload.input_entries],
        "outputs": [entry.name for entry in clara_payload.output_entries],
        "same_as_execute": (
            names_and_paths(payload.input_entries) == names_and_paths(clara_payload.input_entries)
            and names_and_paths(payload.output_entries)
            == names_and_paths(clara_payload.output_entries)
        ),
    }
    (output / "entries.json").write_text(json.dumps(entries, sort_keys=True) + "\\n")
    job = {"job_id": str(driver.job_id), "job_name": driver.job_name}
    (output / "job.json").write_text(json.dumps(job) + "\\n")


if __name__ == "__main__":
    driver = clara.Driver(execute_handler=execute)
    driver.start()
    driver.wait_for_completion()
'''
WORDS = {"notes.txt": "liver spleen kidney\n", "more.txt": "kidney kidney liver\n"}
COUNTS = "kidney 3\nliver 2\nspleen 1\n"


async def aorta(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The `aorta` command, as a user runs it in `cwd`."""
    return await asyncio.to_thread(
        subprocess.run,
        [str(AORTA), *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def mirrors(path: str, declared: str) -> bool:
    """Whether host folder `path` is the local executor's copy of the definition's `declared`
    path: `<workspace>/volumes<declared>` (aorta.executors.workspace)."""
    host = PurePosixPath(path)
    return host.is_absolute() and host.parts[-2:] == ("volumes", declared.strip("/"))


@pytest.mark.timeout(120)
async def test_clara_two_operator_example_sees_the_documented_entries(
    sdk_platform: str, tmp_path: Path
) -> None:
    """Proves the entries of Clara's two-operator example (docs/clara-compatibility.md, "The
    pipeline driver life-cycle") as a job hands them to driver scripts: operator1 sees
    `payload` and `operator1/segmentation-output`, operator2 sees `operator1/segmentation-output`
    and `operator2/final-output`, each at a host folder that mirrors the declared path and exists
    before the script writes; `execute` gets the same payload as the `clara_payload` global, and
    operator2 reads exactly what operator1 wrote."""
    script = tmp_path / "recording_operator.py"
    script.write_text(RECORDING_OPERATOR)
    definition = tmp_path / "two-operators.yaml"
    definition.write_text(TWO_OPERATORS.format(script=script))
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "scan.txt").write_text("slice 1\n")

    run = await run_job(sdk_platform, definition, inputs, tmp_path / "results", "two-operators")

    run.assert_healthy("operator1", "operator2")
    assert run.seen["downloaded"] == [
        "/operators/operator1/segmentation-output/operator1.txt",
        "/operators/operator1/segmentation-output/seen.json",
        "/operators/operator2/final-output/operator2.txt",
        "/operators/operator2/final-output/seen.json",
    ]
    first = run.json("operator1/segmentation-output/seen.json")
    second = run.json("operator2/final-output/seen.json")
    for seen, stage in ((first, "operator1"), (second, "operator2")):
        assert (seen["stage"], seen["job_id"]) == (stage, run.job_id)
        assert seen["execute_got_clara_payload"] is True

    assert [e["name"] for e in first["inputs"]] == ["payload"]
    assert [e["name"] for e in first["outputs"]] == ["operator1/segmentation-output"]
    assert [e["name"] for e in second["inputs"]] == ["operator1/segmentation-output"]
    assert [e["name"] for e in second["outputs"]] == ["operator2/final-output"]
    declared = [
        (first["inputs"][0], "/pipeline_input"),
        (first["outputs"][0], "/output"),
        (second["inputs"][0], "/input"),
        (second["outputs"][0], "/output"),
    ]
    for entry, path in declared:
        assert mirrors(entry["path"], path), (entry, path)
        assert entry["exists"] is True, entry
    assert len({entry["path"] for entry, _ in declared}) == 4

    assert first["read"] == {"payload:scan.txt": "slice 1\n"}
    written = run.results / "operator1" / "segmentation-output"
    assert second["read"] == {
        "operator1/segmentation-output:operator1.txt": "written by operator1\n",
        "operator1/segmentation-output:seen.json": (written / "seen.json").read_text(),
    }
    assert (written / "operator1.txt").read_text() == "written by operator1\n"


@pytest.mark.timeout(120)
async def test_a_clara_script_runs_unmodified_as_a_job_and_with_run_local(
    sdk_platform: str, tmp_path: Path
) -> None:
    """Proves that one Clara operator script (`import clara`, `clara.Driver(execute_handler=)`,
    `clara_payload`, `start()` and `wait_for_completion()`), byte for byte, runs as a job
    operator under `python -u -m nvidia_clara_pipeline_driver.app` with the pipeline `aorta
    operator init` wrote, and with `aorta operator run-local` in that folder, and that both
    runs write the same counts and see the same entries."""
    name = "word-count"
    folder = tmp_path / name
    made = await aorta("operator", "init", name, "--dir", str(folder), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    main = folder / "main.py"
    main.write_bytes(CLARA_OPERATOR)
    local_input = folder / "local" / "input"
    for old in local_input.iterdir():
        old.unlink()
    for file_name, text in WORDS.items():
        (local_input / file_name).write_text(text)

    local = await aorta("operator", "run-local", cwd=folder)
    assert local.returncode == 0, local.stdout + local.stderr

    document = yaml.safe_load((folder / "def" / "one-operator-pipeline.yml").read_text())
    (operator,) = document["operators"]
    assert operator["name"] == name
    operator["container"]["command"] = [
        *("python", "-u", "-m", "nvidia_clara_pipeline_driver.app"),
        str(main),
    ]
    definition = tmp_path / "word-count.yaml"
    definition.write_text(yaml.safe_dump(document, sort_keys=False))
    run = await run_job(sdk_platform, definition, local_input, tmp_path / "results", "count-words")

    assert main.read_bytes() == CLARA_OPERATOR
    run.assert_healthy(name)
    job_output = run.results / name / "output"
    assert sorted(p.name for p in job_output.iterdir()) == [
        "counts.txt",
        "entries.json",
        "job.json",
    ]
    local_output = folder / "local" / "output"
    expected_entries = {
        "stage": name,
        "inputs": ["payload"],
        "outputs": [f"{name}/output"],
        "same_as_execute": True,
    }
    for output in (job_output, local_output):
        assert (output / "counts.txt").read_text() == COUNTS
        assert json.loads((output / "entries.json").read_text()) == expected_entries
    for same in ("counts.txt", "entries.json"):
        assert (job_output / same).read_bytes() == (local_output / same).read_bytes(), same

    in_job = json.loads((job_output / "job.json").read_text())
    assert in_job == {"job_id": str(uuid.UUID(run.job_id)), "job_name": "count-words"}
    on_host = json.loads((local_output / "job.json").read_text())
    assert on_host["job_name"] == f"{name}-local"
    assert uuid.UUID(on_host["job_id"]) != uuid.UUID(run.job_id)
