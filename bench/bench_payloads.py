"""Payload throughput through the gateway, against the blob store itself, and the gateway's memory.

One run, on one file of `AORTA_BENCH_PAYLOAD_MB` MiB (default 2048), on one disk; downloads
are timed `AORTA_BENCH_REPEAT` times (default 3) and their median kept, since a transfer of a
second or two is at the mercy of whatever else the machine does. NVIDIA's client's uploads and
downloads, through the gateway and to the floor below, are timed that many times each too, the
floor's and the gateway's in turn (the first of each pair changing every round), both servers
up throughout, so that other work on the machine and the disk's write-back of an earlier
upload weigh on both alike (the floor's upload once ran alone before the platform started,
and the shares swung with whatever ran when):

- the baseline: `LocalBlobStore.put` of the file and `get` of it (bytes discarded), in this
  process: what the platform's own storage can do;
- the platform: `aorta up` in a separate process on a temporary data dir (the same local blob
  folder kind, on the same disk), the file uploaded and downloaded through its gateway by
  NVIDIA's client (its own virtualenv and process, 64 KiB messages up) and by a plain
  `aorta.api` gRPC client in this process (64 KiB messages up too, as Clara clients send them);
  downloads discard the bytes and are checked for their size, uploads are checked against the
  sha256 the platform recorded;
- ratios gateway / baseline (target >= 0.5);
- the floor: NVIDIA's client uploading to and downloading from `bench.grpc_floor`, a server
  that only swallows what it receives and sends messages it serialized before the call. The
  `*_ceiling_ratio`s (floor / baseline) are the highest ratios any server could reach for that
  client on this machine, and the `gateway_*_share_of_floor`s how close the gateway comes;
- the gateway process's peak RSS growth over its RSS before each transfer, sampled every 10 ms
  with psutil (target < 64 MiB);
- the CPU seconds per GiB moved, of the blob store alone, of the platform's process (which
  includes the same store): the gateway's own cost is the difference, and says how fast it could
  go where the disk is not the limit; and of the floor server (`floor_cpu_s_per_gib_*`), what
  gRPC's Python server spends on the same messages before any work is done with them; and of
  each server's upload by kind of thread (`..._nvidia_upload_event_loop`, `..._grpc_threads`,
  `..._other_threads`; `bench.thread_cpu`), which says where the gateway's excess goes;
- the SHA-256 every upload records, timed alone in this process on the same bytes
  (`sha256_cpu_s_per_gib`), and with the floor's receive (`upload_cpu_bound_s_per_gib`): the
  least the platform's process can spend per uploaded GiB before it writes a byte, to read the
  upload CPU target against;
- the targets of uploads and downloads near the client's ceiling: the platform's process spends
  at most 2.0 CPU s per GiB NVIDIA's client uploads (`gateway_cpu_s_per_gib_nvidia_upload`,
  `upload_cpu_target_met`), and that client moves at least 0.85 of its floor's rate up and 0.9
  down (`gateway_upload_share_of_floor`, `gateway_download_share_of_floor`,
  `upload_share_target_met`, `download_share_target_met`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path

from aorta.blobs.local import LocalBlobStore
from bench.payload_clients import (
    UPLOAD,
    check_upload,
    clara,
    delete_payload,
    nvidia_download,
    plain_download,
    plain_upload,
)
from bench.processes import RssSampler, floor_server, platform
from bench.thread_cpu import ThreadSplit

MiB = 1 << 20
TARGET_RATIO = 0.5
TARGET_RSS_MIB = 64
TARGET_UPLOAD_CPU_S_PER_GIB = 2.0
TARGET_UPLOAD_SHARE_OF_FLOOR = 0.85
TARGET_DOWNLOAD_SHARE_OF_FLOOR = 0.9


def run() -> dict[str, object]:
    size = int(os.environ.get("AORTA_BENCH_PAYLOAD_MB", "2048")) * MiB
    repeat = int(os.environ.get("AORTA_BENCH_REPEAT", "3"))
    with tempfile.TemporaryDirectory(prefix="aorta-bench-payloads-") as folder:
        work = Path(folder)
        source = work / "source.raw"
        digest, hashing_s = write_source(source, size)
        baseline = asyncio.run(direct(work / "direct", source, size, repeat))
        with (
            floor_server(size) as (floor_target, floor_pid),
            RssSampler(floor_pid) as floor,
            platform(work / "platform") as (target, pid),
            RssSampler(pid) as rss,
        ):
            floor_split, split = ThreadSplit(floor_pid), ThreadSplit(pid)

            def floor_up() -> float:
                with floor.phase("nvidia upload", size), floor_split.span(size):
                    return float(clara(UPLOAD, floor_target, str(source))["seconds"])

            uploads: list[str] = []

            def nvidia_up() -> float:
                with rss.phase("nvidia upload", size), split.span(size):
                    uploaded = clara(UPLOAD, target, str(source))
                check_upload(target, uploaded["payload_id"], digest)
                if uploads:
                    # Only the first is downloaded; the others' pages still to be written
                    # back would weigh on the downloads.
                    delete_payload(target, uploaded["payload_id"])
                else:
                    uploads.append(uploaded["payload_id"])
                return float(uploaded["seconds"])

            floor_up_s, nvidia_up_s = alternating(repeat, floor_up, nvidia_up)

            def floor_down() -> float:
                with floor.phase("nvidia download", size):
                    return nvidia_download(floor_target, "floor", size)

            def nvidia_down() -> float:
                with rss.phase("nvidia download", size):
                    return nvidia_download(target, uploads[0], size)

            floor_s, nvidia_down_s = alternating(repeat, floor_down, nvidia_down)
            with rss.phase("grpc upload", size):
                grpc_up_s, payload_id = plain_upload(target, source)
            check_upload(target, payload_id, digest)

            def plain() -> float:
                with rss.phase("grpc download", size):
                    return plain_download(target, payload_id, size)

            grpc_down_s = median(repeat, plain)
    rates = {
        "direct_put_mib_s": rate(size, baseline.put_s),
        "direct_get_mib_s": rate(size, baseline.get_s),
        "nvidia_upload_mib_s": rate(size, nvidia_up_s),
        "nvidia_download_mib_s": rate(size, nvidia_down_s),
        "grpc_upload_mib_s": rate(size, grpc_up_s),
        "grpc_download_mib_s": rate(size, grpc_down_s),
        "floor_nvidia_upload_mib_s": rate(size, floor_up_s),
        "floor_nvidia_download_mib_s": rate(size, floor_s),
    }
    ratios = {
        "nvidia_upload_ratio": rates["nvidia_upload_mib_s"] / rates["direct_put_mib_s"],
        "nvidia_download_ratio": rates["nvidia_download_mib_s"] / rates["direct_get_mib_s"],
        "grpc_upload_ratio": rates["grpc_upload_mib_s"] / rates["direct_put_mib_s"],
        "grpc_download_ratio": rates["grpc_download_mib_s"] / rates["direct_get_mib_s"],
    }
    context = {
        "upload_ceiling_ratio": rates["floor_nvidia_upload_mib_s"] / rates["direct_put_mib_s"],
        "download_ceiling_ratio": rates["floor_nvidia_download_mib_s"] / rates["direct_get_mib_s"],
        "gateway_upload_share_of_floor": (
            rates["nvidia_upload_mib_s"] / rates["floor_nvidia_upload_mib_s"]
        ),
        "gateway_download_share_of_floor": (
            rates["nvidia_download_mib_s"] / rates["floor_nvidia_download_mib_s"]
        ),
    }
    growth = {f"rss_growth_mib_{name.replace(' ', '_')}": mib for name, mib in rss.peaks.items()}
    sha256_per_gib = hashing_s * (1 << 30) / size
    cpu = {
        "sha256_cpu_s_per_gib": sha256_per_gib,
        "upload_cpu_bound_s_per_gib": floor.cpu_per_gib()["nvidia upload"] + sha256_per_gib,
        "direct_put_cpu_s_per_gib": baseline.put_cpu_per_gib,
        "direct_get_cpu_s_per_gib": baseline.get_cpu_per_gib,
        **{
            f"gateway_cpu_s_per_gib_{name.replace(' ', '_')}": seconds
            for name, seconds in rss.cpu_per_gib().items()
        },
        **{
            f"floor_cpu_s_per_gib_{name.replace(' ', '_')}": seconds
            for name, seconds in floor.cpu_per_gib().items()
        },
        **{
            f"gateway_cpu_s_per_gib_nvidia_upload_{kind}": seconds
            for kind, seconds in split.per_gib().items()
        },
        **{
            f"floor_cpu_s_per_gib_nvidia_upload_{kind}": seconds
            for kind, seconds in floor_split.per_gib().items()
        },
    }
    return {
        "file_mib": size // MiB,
        "download_repeats": repeat,
        **{key: round(value, 1) for key, value in rates.items()},
        **{key: round(value, 2) for key, value in ratios.items()},
        **{key: round(value, 2) for key, value in context.items()},
        **{key: round(value, 1) for key, value in growth.items()},
        **{key: round(value, 2) for key, value in cpu.items()},
        "ratio_target_met": min(ratios.values()) >= TARGET_RATIO,
        "rss_target_met": max(growth.values()) < TARGET_RSS_MIB,
        "upload_cpu_target_met": (
            cpu["gateway_cpu_s_per_gib_nvidia_upload"] <= TARGET_UPLOAD_CPU_S_PER_GIB
        ),
        "upload_share_target_met": (
            context["gateway_upload_share_of_floor"] >= TARGET_UPLOAD_SHARE_OF_FLOOR
        ),
        "download_share_target_met": (
            context["gateway_download_share_of_floor"] >= TARGET_DOWNLOAD_SHARE_OF_FLOOR
        ),
    }


def alternating(
    times: int, floor: Callable[[], float], gateway: Callable[[], float]
) -> tuple[float, float]:
    """The medians of `times` runs of `floor` and of `gateway` (seconds), run in turn and
    the first of each pair changing every round, so that what else the machine does (and the
    disk still writing back the last upload) weighs on both alike."""
    floors, gateways = [], []
    for index in range(max(1, times)):
        if index % 2:
            gateways.append(gateway())
            floors.append(floor())
        else:
            floors.append(floor())
            gateways.append(gateway())
    return statistics.median(floors), statistics.median(gateways)


def median(times: int, measure: Callable[[], float]) -> float:
    """The median of `times` runs of `measure` (seconds)."""
    return statistics.median(measure() for _ in range(max(1, times)))


def cpu_seconds() -> float:
    """User and system CPU seconds of this process so far."""
    times = os.times()
    return times.user + times.system


def rate(size: int, seconds: float) -> float:
    return size / MiB / seconds


def write_source(path: Path, size: int) -> tuple[str, float]:
    """Writes `size` bytes in which every 1 MiB block differs (a window sliding over a random
    buffer); returns their sha256 and the CPU seconds this thread spent computing it."""
    base = os.urandom(MiB + 4096)
    digest = hashlib.sha256()
    hashing = 0.0
    with path.open("wb") as target:
        written = 0
        while written < size:
            start = (written // MiB * 4099) % 4096
            block = base[start : start + min(MiB, size - written)]
            before = time.thread_time()
            digest.update(block)
            hashing += time.thread_time() - before
            target.write(block)
            written += len(block)
    return digest.hexdigest(), hashing


@dataclass(frozen=True)
class Baseline:
    """The blob store's own figures: seconds of a put and of a get (bytes discarded; the
    median of the runs), and the CPU seconds per GiB of each."""

    put_s: float
    get_s: float
    put_cpu_per_gib: float
    get_cpu_per_gib: float


async def direct(root: Path, source: Path, size: int, repeat: int) -> Baseline:
    """The blob store's own put of `source` and `repeat` gets of it, in this process."""
    store = await LocalBlobStore.open(root)
    per_gib = (1 << 30) / size
    try:

        async def chunks() -> AsyncIterator[bytes]:
            with source.open("rb") as handle:
                while block := await asyncio.to_thread(handle.read, MiB):
                    yield block

        started, cpu = time.perf_counter(), cpu_seconds()
        await store.put("bench/big.raw", chunks())
        put_s, put_cpu = time.perf_counter() - started, cpu_seconds() - cpu

        gets: list[tuple[float, float]] = []
        for _ in range(max(1, repeat)):
            started, cpu = time.perf_counter(), cpu_seconds()
            async with aclosing(store.get("bench/big.raw")) as data:
                async for _ in data:
                    pass
            gets.append((time.perf_counter() - started, cpu_seconds() - cpu))
        return Baseline(
            put_s=put_s,
            get_s=statistics.median(seconds for seconds, _ in gets),
            put_cpu_per_gib=put_cpu * per_gib,
            get_cpu_per_gib=statistics.median(cpu for _, cpu in gets) * per_gib,
        )
    finally:
        await store.close()


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
