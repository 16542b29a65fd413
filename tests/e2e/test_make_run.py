"""`make run` leads somewhere: run as `make run` runs it (examples/run_main_job.py, here on
host processes and in folders of the test's own), its output ends by saying the report matched
the ground truth, listing every result file in the results folder, and giving the commands to
try next on the same platform."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "run_main_job.py"
RESULT_FILES = {
    "reader/volume/volume.json",
    "reader/volume/volume.nii.gz",
    "segmentation/mask/labels.json",
    "segmentation/mask/mask.nii.gz",
    "writer/report.json",
    "writer/report.txt",
    "writer/result.nii.gz",
}


@pytest.mark.timeout(240)
def test_make_run_ends_with_what_matched_the_results_and_the_next_steps(tmp_path: Path) -> None:
    work, results = tmp_path / "work", tmp_path / "results"
    (results / "stale").mkdir(parents=True)  # a previous run's leftovers are replaced
    env = {**os.environ, "AORTA_EXECUTOR": "local"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--work-dir", str(work), "--results", str(results)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]

    ending = done.stdout.split("stopped cleanly.\n", 1)[1].splitlines()
    assert re.fullmatch(
        r"The report matched the ground truth: liver \d+ voxels, spleen \d+ voxels, "
        r"kidney \d+ voxels, segmented by Triton\.",
        ending[0],
    ), ending[0]
    listed = ending[ending.index("Result files, in results/:") + 1 :]
    files = {line.split("  (")[0].strip() for line in listed[: listed.index("")]}
    assert files == RESULT_FILES
    assert {str(p.relative_to(results)) for p in results.rglob("*") if p.is_file()} == files

    port = re.search(r"--grpc-port (\d+)", done.stdout)
    assert port is not None
    installed = Path(sys.executable).parent / "aorta"
    found = shutil.which("aorta", path=env.get("PATH"))
    aorta = "aorta" if found and Path(found).resolve() == installed.resolve() else str(installed)
    up = f"  {aorta} up --data-dir work/platform"
    if port.group(1) != "30031":
        up += f" --grpc-port {port.group(1)}"
    assert ending[-5:] == [
        "Next, the same platform with this job in it:",
        up,
        "and in another terminal:",
        f"  export AORTA_HOST=127.0.0.1:{port.group(1)}",
        f"  {aorta} list jobs",
    ]
