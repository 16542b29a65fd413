"""`make run`: start the embedded platform and run its main job through the public API.

1. `aorta up` on a data dir under `.aorta/run`, waiting until the gateway reports SERVING over
   gRPC health checking; its operators run in containers (the images `make images` built)
   when a container engine answers or podman can start one for the run, and as host
   processes otherwise (examples/run_engine.py; `AORTA_EXECUTOR=local` asks for the latter);
2. NVIDIA's own Clara client (in its own virtualenv, as a Clara user would) asks the version;
3. the example Triton model (examples/models/segmentation, Python backend) is uploaded to the
   model repository through the Models API with `aorta create model`;
4. a synthetic CT volume is generated and the example pipeline (examples/segmentation: reader
   -> segmentation -> writer) runs on it with `aorta run`: create the pipeline, create a job,
   upload the input, start (the platform loads the model on a Triton server first, and the
   segmentation operator calls it), watch the DAG, download every operator output;
5. the report is checked against the volume's ground truth and must say Triton segmented it;
   the platform is stopped with SIGTERM, which must end it cleanly.

Exit status 0 means the whole flow worked.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from run_engine import RunEngine, engine_for_run

from aorta.testing.clara_client import run_clara_python
from aorta.testing.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".aorta" / "run"
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


def _wait_serving(port: int, platform: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if platform.poll() is not None:
                raise SystemExit(f"aorta up exited early with status {platform.returncode}")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise SystemExit(f"the platform did not become ready on port {port} within {timeout:.0f} s")


def _step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def _run(command: list[str]) -> None:
    print("$ " + " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


def _check_report(results: Path, truth_file: Path) -> None:
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


def main_job(port: int, engine: RunEngine) -> None:
    host = f"127.0.0.1:{port}"
    _step("Clara compatibility")
    result = run_clara_python(VERSION_CHECK, args=["127.0.0.1", str(port)])
    sys.stdout.write(result.stdout)
    if result.returncode != 0:
        raise SystemExit(result.stderr)

    _step("The example Triton model, uploaded through the Models API")
    _run([str(BIN / "aorta"), "create", "model", "--host", host, "-f", str(MODEL)])

    _step("The example pipeline on a synthetic CT volume, segmented by Triton")
    inputs, results, truth = RUN_DIR / "input", RUN_DIR / "results", RUN_DIR / "truth.json"
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
    _check_report(results, truth)


def main() -> int:
    _step("Where the operators run")
    with engine_for_run(RUN_DIR / "engine", os.environ) as engine:
        print(engine.note[0].upper() + engine.note[1:] + ".", flush=True)
        return run_platform(engine)


def run_platform(engine: RunEngine) -> int:
    port = free_port(preferred=PREFERRED_PORT)
    data_dir = RUN_DIR / "platform"
    command = [str(BIN / "aorta"), "up", "--data-dir", str(data_dir), "--grpc-port", str(port)]
    command += ["--executor", engine.executor]
    env = {**os.environ, **engine.environ()}
    env.update(AORTA_LOG_FORMAT="console", AORTA_LOG_LEVEL="warning")
    _step("Starting the embedded platform")
    print("$ " + " ".join(command), flush=True)
    platform = subprocess.Popen(command, env=env, cwd=ROOT)
    failure: str | None = None
    try:
        _wait_serving(port, platform)
        main_job(port, engine)
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
