"""The CLI's direct path to an S3 blob store against the `minio` client on the same endpoint.

One run, on one file of `AORTA_BENCH_DIRECT_MB` MiB (default 256), against one S3 endpoint:
moto's server (`aorta.testing.s3`), which the platform uses as its blob store. `aorta up`
always keeps a local blob folder, so the platform here is the gateway and the payloads service,
each in a child process (`python -m aorta_services.gateway`, `...payloads`), on a nats-server
of their own. Each transfer is timed `AORTA_BENCH_REPEAT` times (default 3), the kinds
alternating, and the median kept. In each turn the three uploads come first, then the three
downloads in an order that turns round from turn to turn (each place once in three turns),
each removed once checked: what writing a download's new file costs depends on what the
machine's memory went through just before (on these VMs a 256 MiB file written right after
another took 0.25-0.35 CPU s, four times in six, against 0.04-0.07 s for the first), so the
fixed order before, the minio client's download always first, favoured it
(docs/performance.md):

- the baseline: the `minio` client's `fput_object` of the file and `fget_object` of it into a
  file, in this process, with the platform's credentials: what a client that holds them gets;
- the direct path: `aorta upload` and `aorta download payload` run in this process (click's
  runner, so the process start is not counted; the platform's answers are), the bytes going
  through the URLs the platform hands out, every upload hashed by the CLI and checked by the
  platform, every download checked against the recorded SHA-256;
- the gRPC path for comparison: the same commands with `--via-gateway`;
- `direct_path_upload_ratio` and `direct_path_download_ratio`: the minio client's time over the
  direct path's (target >= 0.8), and the same for the gRPC path.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

from click import Group, group
from click.testing import CliRunner
from minio import Minio

from aorta.cli import register
from aorta.testing.embedded import wait_serving
from aorta.testing.nats import nats_server
from aorta.testing.ports import free_port
from aorta.testing.s3 import S3Server

MiB = 1 << 20
TARGET_RATIO = 0.8
_NAME = "study.raw"


def _root() -> Group:
    @group()
    def aorta() -> None:
        """aorta"""

    register(aorta)
    return aorta


class Cli:
    """`aorta ...` in this process against one platform."""

    def __init__(self, target: str, config: Path) -> None:
        self._group = _root()
        self._env = {"AORTA_HOST": target, "AORTA_CONFIG": str(config), "NO_COLOR": "1"}

    def __call__(self, *args: str) -> str:
        result = CliRunner().invoke(self._group, list(args), env=self._env)
        if result.exit_code != 0:
            raise RuntimeError(f"aorta {' '.join(args)} failed: {result.output}")
        return result.output


@contextmanager
def s3_platform(work: Path, s3: S3Server) -> Iterator[str]:
    """The gateway and the payloads service on `s3` in child processes; yields the target."""
    port = free_port()
    with nats_server(work / "nats") as nats, ExitStack() as children:
        environ = {
            **os.environ,
            "AORTA_NATS_URL": nats.url,
            "AORTA_DATA_DIR": str(work / "data"),
            "AORTA_BLOB_STORE": f"s3://bench-aorta-{uuid.uuid4().hex[:12]}",
            "AORTA_S3_ENDPOINT": s3.endpoint,
            "AORTA_S3_ACCESS_KEY": s3.access_key,
            "AORTA_S3_SECRET_KEY": s3.secret_key,
            "AORTA_S3_REGION": s3.region,
            "AORTA_GRPC_ADDRESS": f"127.0.0.1:{port}",
            "AORTA_LOG_LEVEL": "warning",
        }
        for service in ("payloads", "gateway"):
            state = {"AORTA_STATE_STORE": f"sqlite:///{work / service}.db"}
            process = children.enter_context(_child(service, {**environ, **state}, work))
        wait_serving(port, process)
        yield f"127.0.0.1:{port}"


@contextmanager
def _child(
    service: str, environ: Mapping[str, str], work: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with (work / f"{service}.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", f"aorta_services.{service}"],
            env=dict(environ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(30)


def run() -> dict[str, object]:
    size = int(os.environ.get("AORTA_BENCH_DIRECT_MB", "256")) * MiB
    repeat = int(os.environ.get("AORTA_BENCH_REPEAT", "3"))
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="aorta-bench-direct-") as folder, S3Server() as s3:
        work = Path(folder)
        source = work / _NAME
        with source.open("wb") as handle:
            for _ in range(size // MiB):
                handle.write(os.urandom(MiB))
        client = Minio(
            s3.endpoint,
            access_key=s3.access_key,
            secret_key=s3.secret_key,
            secure=False,
            region=s3.region,
        )
        bucket = f"bench-minio-{uuid.uuid4().hex[:12]}"
        client.make_bucket(bucket)
        with s3_platform(work, s3) as target:
            cli = Cli(target, work / "no-config.yaml")
            for turn in range(repeat):
                out = work / f"out-{turn}"
                key = f"minio-{turn}"
                started = time.perf_counter()
                client.fput_object(bucket, key, str(source))
                times.setdefault("minio_put", []).append(time.perf_counter() - started)
                payloads: dict[str, str] = {}
                for path, flag in (("direct", ()), ("grpc", ("--via-gateway",))):
                    payload_id = cli("create", "payload").strip().removeprefix("PAYLOAD_ID:")
                    started = time.perf_counter()
                    said = cli("upload", *flag, payload_id, str(source))
                    times.setdefault(f"{path}_upload", []).append(time.perf_counter() - started)
                    if ("straight to the blob store" in said) != (path == "direct"):
                        raise RuntimeError(f"the {path} upload took the other path: {said}")
                    payloads[path] = payload_id
                kinds = ["minio", "direct", "grpc"]
                for kind in kinds[turn % 3 :] + kinds[: turn % 3]:
                    started = time.perf_counter()
                    if kind == "minio":
                        client.fget_object(bucket, key, str(out / kind / _NAME))
                    else:
                        flag = ("--via-gateway",) if kind == "grpc" else ()
                        said = cli(
                            "download", "payload", *flag, payloads[kind], f"/input/{_NAME}",
                            str(out / kind),
                        )  # fmt: skip
                        if ("straight from the blob store" in said) != (kind == "direct"):
                            raise RuntimeError(f"the {kind} download took the other path: {said}")
                    name = "minio_get" if kind == "minio" else f"{kind}_download"
                    times.setdefault(name, []).append(time.perf_counter() - started)
                    if (out / kind / _NAME).stat().st_size != size:
                        raise RuntimeError(f"the {kind} download is not {size} bytes")
                    shutil.rmtree(out)
    median = {name: statistics.median(values) for name, values in times.items()}
    upload_ratio = median["minio_put"] / median["direct_upload"]
    download_ratio = median["minio_get"] / median["direct_download"]
    rates = {f"{name}_mib_s": round(size / MiB / seconds, 1) for name, seconds in median.items()}
    return {
        "size_mib": size // MiB,
        "repeat": repeat,
        **rates,
        "direct_path_upload_ratio": round(upload_ratio, 3),
        "direct_path_download_ratio": round(download_ratio, 3),
        "grpc_path_upload_ratio": round(median["minio_put"] / median["grpc_upload"], 3),
        "grpc_path_download_ratio": round(median["minio_get"] / median["grpc_download"], 3),
        "direct_path_target_met": upload_ratio >= TARGET_RATIO and download_ratio >= TARGET_RATIO,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
