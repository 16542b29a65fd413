"""`make run`: start the embedded platform and run its main job through the public API.

1. `aorta up` on a data dir under `.aorta/run`, waiting until the gateway reports SERVING over
   gRPC health checking; its operators run in containers (the images `make images` built)
   when a container engine answers or podman can start one for the run, and as host
   processes otherwise (examples/run_engine.py; `AORTA_EXECUTOR=local` asks for the latter);
   `--work-dir` puts the data dir, the input and the engine's folder elsewhere;
2. NVIDIA's own Clara client (in its own virtualenv, as a Clara user would) asks the version;
3. the example Triton model (examples/models/segmentation, Python backend) is uploaded to the
   model repository through the Models API with `aorta create model`;
4. a synthetic CT volume is generated and the example pipeline (examples/segmentation: reader
   -> segmentation -> writer) runs on it with `aorta run`: create the pipeline, create a job,
   upload the input, start (the platform loads the model on a Triton server first, and the
   segmentation operator calls it), watch the DAG, download every operator output;
5. the report is checked against the volume's ground truth and must say Triton segmented it;
   the platform is stopped with SIGTERM, which must end it cleanly.

It ends by saying what matched, listing the result files (in `results/`, `--results`, replaced
by each run) and the commands to try next on the same platform. Exit status 0 means the whole
flow worked.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from run_engine import RunEngine, engine_for_run

from aorta.testing.clara_client import run_clara_python
from aorta.testing.embedded import wait_serving
from aorta.testing.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".aorta" / "run"
RESULTS = ROOT / "results"
EXAMPLE = ROOT / "examples" / "segmentation"
MODEL = ROOT / "examples" / "models" / "segmentation"
PREFERRED_PORT = 30031
BIN = Path(sys.executable).parent

VERSION_CHECK = """
import sys
from nvidia_clara.clara_client import ClaraClient

info = ClaraClient(target=sys.argv[1], port=sys.argv[2]).version()
print(f"Clara.Version through NVIDIA's client: {info.major}.{info.minor}.{info.patch}{info.label}")
"""


def _wait_serving(port: int, platform: subprocess.Popen[bytes]) -> None:
    try:
        wait_serving(port, platform)
    except (RuntimeError, TimeoutError) as error:
        raise SystemExit(f"the platform did not become ready: {error}") from None


def _step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def _run(command: list[str]) -> None:
    print("$ " + " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


@dataclass(frozen=True)
class Outcome:
    """What the main job showed: the organs it counted as the ground truth says, and how."""

    organs: dict[str, int]
    method: str


def _check_report(results: Path, truth_file: Path) -> Outcome:
    report = json.loads((results / "writer" / "report.json").read_text())
    truth = json.loads(truth_file.read_text())
    found = {row["name"]: row["voxels"] for row in report["labels"]}
    for organ, voxels in truth.items():
        if abs(found.get(organ, 0) - voxels) > 0.05 * voxels:
            raise SystemExit(
                f"the pipeline found {found.get(organ)} voxels of {organ}, not {voxels}"
            )
    # The definition lists the model, so the platform must have given the operator a Triton
    # server; the operator segments with numpy ("thresholds") only without one.
    if not report["method"].startswith("triton "):
        raise SystemExit(f"the segmentation did not go through Triton: {report['method']}")
    print((results / "writer" / "report.txt").read_text(), flush=True)
    return Outcome({organ: found[organ] for organ in truth}, report["method"])


def _shown(path: Path) -> str:
    """`path` relative to the current folder when it is below it, for commands to copy."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _aorta_command() -> str:
    """How the reader types `aorta`: bare when the shell finds this one, else its path."""
    found = shutil.which("aorta")
    here = BIN / "aorta"
    return "aorta" if found and Path(found).resolve() == here.resolve() else _shown(here)


def summary(outcome: Outcome, results: Path, data_dir: Path, port: int) -> str:
    """The end of `make run`: what matched, the result files, and what to try next."""
    counts = ", ".join(f"{organ} {voxels} voxels" for organ, voxels in outcome.organs.items())
    lines = [
        f"The report matched the ground truth: {counts}, segmented by Triton.",
        "",
        f"Result files, in {_shown(results)}/:",
    ]
    for path in sorted(p for p in results.rglob("*") if p.is_file()):
        lines.append(f"  {path.relative_to(results)}  ({path.stat().st_size} bytes)")
    aorta = _aorta_command()
    up = f"{aorta} up --data-dir {_shown(data_dir)}"
    if port != PREFERRED_PORT:
        up += f" --grpc-port {port}"
    lines += [
        "",
        "Next, the same platform with this job in it:",
        f"  {up}",
        "and in another terminal:",
        f"  export AORTA_HOST=127.0.0.1:{port}",
        f"  {aorta} list jobs",
    ]
    return "\n".join(lines)


def main_job(port: int, engine: RunEngine, run_dir: Path, results: Path) -> Outcome:
    host = f"127.0.0.1:{port}"
    _step("Clara compatibility")
    result = run_clara_python(VERSION_CHECK, args=["127.0.0.1", str(port)])
    sys.stdout.write(result.stdout)
    if result.returncode != 0:
        raise SystemExit(result.stderr)

    _step("The example Triton model, uploaded through the Models API")
    _run([str(BIN / "aorta"), "create", "model", "--host", host, "-f", str(MODEL)])

    _step("The example pipeline on a synthetic CT volume, segmented by Triton")
    inputs, truth = run_dir / "input", run_dir / "truth.json"
    shutil.rmtree(results, ignore_errors=True)
    _run([sys.executable, str(EXAMPLE / "generate_input.py"), str(inputs), "--truth", str(truth)])
    # In containers the operators' scripts are the images' own (/app, the pipeline's default);
    # host processes run this checkout's copies.
    where = (
        []
        if engine.executor == "container"
        else ["--var", f"OPERATORS_DIR={EXAMPLE / 'operators'}"]
    )
    _run(
        [
            str(BIN / "aorta"), "run", "--host", host,
            "-p", str(EXAMPLE / "pipeline.yml"), "-f", str(inputs), "-o", str(results),
            *where,
        ]
    )  # fmt: skip
    return _check_report(results, truth)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="make run: the platform's main job end to end")
    parser.add_argument("--work-dir", type=Path, default=RUN_DIR, help="data dir, input, engine")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the results go")
    args = parser.parse_args(argv)
    run_dir, results = args.work_dir.resolve(), args.results.resolve()
    _step("Where the operators run")
    with engine_for_run(run_dir / "engine", os.environ) as engine:
        print(engine.note[0].upper() + engine.note[1:] + ".", flush=True)
        return run_platform(engine, run_dir, results)


def run_platform(engine: RunEngine, run_dir: Path, results: Path) -> int:
    port = free_port(preferred=PREFERRED_PORT)
    data_dir = run_dir / "platform"
    command = [str(BIN / "aorta"), "up", "--data-dir", str(data_dir), "--grpc-port", str(port)]
    command += ["--executor", engine.executor]
    env = {**os.environ, **engine.environ()}
    env.update(AORTA_LOG_FORMAT="console", AORTA_LOG_LEVEL="warning")
    _step("Starting the embedded platform")
    print("$ " + " ".join(command), flush=True)
    platform = subprocess.Popen(command, env=env, cwd=ROOT)
    failure: str | None = None
    outcome: Outcome | None = None
    try:
        _wait_serving(port, platform)
        outcome = main_job(port, engine, run_dir, results)
    except (subprocess.CalledProcessError, SystemExit) as exc:
        failure = str(exc)
    finally:
        platform.send_signal(signal.SIGTERM)
        try:
            status = platform.wait(timeout=40)
        except subprocess.TimeoutExpired:
            platform.kill()
            status = platform.wait()
    if failure is not None:
        print(f"\nThe main job failed: {failure}", file=sys.stderr)
        return 1
    if status != 0:
        print(f"\naorta up exited with status {status}", file=sys.stderr)
        return 1
    print("\nThe platform ran its main job end to end and stopped cleanly.")
    if outcome is not None:
        print(summary(outcome, results, data_dir, port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
