"""The example pipeline (examples/segmentation) end to end, as a user runs it: `aorta up` in its
own process on a fresh data dir and a free port, the example Triton model
(examples/models/segmentation) uploaded through the Models API with `aorta create model`, a
synthetic CT volume made by the example's generator, and the job run with `aorta run`.

The report must count exactly the organ voxels the generator drew and say that Triton segmented
the volume, and the platform's own Triton server must have counted that inference. Then SIGTERM
stops the platform, and no process it started (nats-server, tritonserver and its Python-backend
stub, the operators) may be left.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import psutil
import pytest
import tritonclient.grpc as triton
from grpc_health.v1 import health_pb2, health_pb2_grpc

from aorta.testing.embedded import PROBE_OPTIONS
from aorta.testing.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "segmentation"
MODEL = ROOT / "examples" / "models" / "segmentation"
AORTA = Path(sys.executable).parent / "aorta"
OPERATORS = ("reader", "segmentation", "writer")


def wait_serving(port: int, platform: subprocess.Popen[bytes], log: Path) -> None:
    """Returns once the gateway answers SERVING to gRPC health checking (within 60 s)."""
    deadline = time.monotonic() + 60
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=PROBE_OPTIONS) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            assert platform.poll() is None, f"aorta up exited early:\n{log.read_text()}"
            with contextlib.suppress(grpc.RpcError):
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            time.sleep(0.1)
    raise AssertionError(f"the platform was not serving on port {port}:\n{log.read_text()}")


def command_line(process: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return " ".join(process.cmdline())
    return ""


def alive(process: psutil.Process) -> bool:
    """Whether `process` (the same one: psutil checks its start time too) still runs; a zombie
    not yet reaped counts as gone."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class Descendants:
    """Every process seen below `root`, sampled every 20 ms on a thread while in a `with`."""

    def __init__(self, root: psutil.Process) -> None:
        self.root = root
        self.seen: dict[int, tuple[psutil.Process, str]] = {}
        self.parents: dict[int, int] = {}
        self._stop = threading.Event()

    def sample(self) -> None:
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in self.root.children(recursive=True):
                # A command line is read again at every sample: one read between a fork and
                # its exec is still the parent's, and is replaced once the child has exec'd.
                known = self.seen.get(child.pid)
                line = command_line(child) or (known[1] if known else "")
                self.seen[child.pid] = (known[0] if known else child, line)
                if known is None:
                    with contextlib.suppress(psutil.Error):
                        self.parents[child.pid] = child.ppid()

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        def loop() -> None:
            while not self._stop.wait(0.02):
                self.sample()

        thread = threading.Thread(target=loop, name="descendants", daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join()

    def matching(self, text: str) -> list[str]:
        """The command lines holding `text`, leaving out a process whose parent matches too: a
        child sampled between its fork and its exec still shows its parent's command line (a
        Triton server starting a backend stub)."""
        pids = {pid for pid, (_, line) in self.seen.items() if text in line}
        return [
            line
            for pid, (_, line) in self.seen.items()
            if pid in pids and self.parents.get(pid) not in pids
        ]

    def left(self) -> list[str]:
        return [f"{p.pid}: {line}" for p, line in self.seen.values() if alive(p)]


def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(part) for part in command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def processes_under(folder: Path) -> list[str]:
    """Processes other than this one whose command line or working folder is inside `folder`."""
    found = []
    for process in psutil.process_iter():
        if process.pid == os.getpid() or not alive(process):
            continue
        with contextlib.suppress(psutil.Error):
            line = " ".join(process.cmdline())
            if str(folder) in line or process.cwd().startswith(str(folder)):
                found.append(f"{process.pid}: {line}")
    return found


@pytest.mark.timeout(120)
def test_the_example_pipeline_runs_on_aorta_up_with_its_triton_model(tmp_path: Path) -> None:
    """Proves that a user's path works end to end: `aorta up`, `aorta create model`, `aorta run`
    on the example pipeline give a report whose organ voxel counts equal the generator's ground
    truth, segmented by the platform's own Triton server (the report's method names it and it
    counted one inference of the model), and that SIGTERM stops the platform with status 0
    leaving no nats-server, tritonserver or operator process behind."""
    port = free_port()
    host = f"127.0.0.1:{port}"
    data_dir = tmp_path / "platform"
    log = tmp_path / "aorta-up.log"
    env = {**os.environ, "AORTA_LOG_FORMAT": "console", "AORTA_LOG_LEVEL": "warning"}
    up = [AORTA, "up", "--data-dir", data_dir, "--grpc-port", str(port), "--listen", "127.0.0.1"]
    # The host path, even where a container engine answers (test_make_run_containers.py
    # covers the containers).
    up += ["--executor", "local", "--web-port", "0", "--metrics-port", "0"]
    with log.open("wb") as output:
        platform = subprocess.Popen(
            [str(part) for part in up], cwd=tmp_path, env=env, stdout=output, stderr=output
        )
    descendants = Descendants(psutil.Process(platform.pid))
    try:
        wait_serving(port, platform, log)
        uploaded = run(AORTA, "create", "model", "--host", host, "-f", MODEL)
        assert uploaded.stdout.startswith("MODEL_ID:"), uploaded.stdout

        scan, results, truth_file = tmp_path / "ct", tmp_path / "results", tmp_path / "truth.json"
        run(sys.executable, EXAMPLE / "generate_input.py", scan, "--truth", truth_file)
        with descendants.watching():
            run(
                AORTA, "run", "--host", host, "-p", EXAMPLE / "pipeline.yml", "-f", scan,
                "-o", results, "--var", f"OPERATORS_DIR={EXAMPLE / 'operators'}",
                "--interval", "0.1",
            )  # fmt: skip

        report = json.loads((results / "writer" / "report.json").read_text())
        truth = json.loads(truth_file.read_text())
        found = {row["name"]: row for row in report["labels"]}
        assert {name: row["voxels"] for name, row in found.items()} == truth
        assert [found[name]["regions"] for name in ("liver", "spleen", "kidney")] == [1, 1, 2]
        method, _, triton_uri = report["method"].partition(" ")
        assert method == "triton", report["method"]

        # The server the operator was given is the platform's, and it ran the model once.
        descendants.sample()
        servers = descendants.matching(f"--grpc-port={triton_uri.rsplit(':', 1)[1]}")
        assert len(servers) == 1 and "tritonserver" in servers[0], descendants.seen
        client = triton.InferenceServerClient(url=triton_uri)
        try:
            statistics = client.get_inference_statistics("segmentation", as_json=True)
        finally:
            client.close()
        (model,) = statistics["model_stats"]
        assert (model["name"], model["inference_count"]) == ("segmentation", "1"), model
    finally:
        descendants.sample()
        platform.send_signal(signal.SIGTERM)
        try:
            status = platform.wait(timeout=40)
        except subprocess.TimeoutExpired:
            platform.kill()
            status = platform.wait()
        left = descendants.left()
        for pid in (int(line.split(":")[0]) for line in left):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    assert status == 0, log.read_text()
    assert "Aorta stopped." in log.read_text()
    assert len(descendants.matching("nats-server")) == 1
    assert len(descendants.matching("tritonserver")) == 1
    for name in OPERATORS:
        assert descendants.matching(str(EXAMPLE / "operators" / name / "main.py")), name
    assert left == []
    assert processes_under(tmp_path) == []
