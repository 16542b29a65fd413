"""What one page of the console's job list costs with a long history, against the gRPC list of
the same jobs.

One `aorta up` in a child process, its store seeded with `HISTORY` finished jobs (straight into
SQLite through the adapter, as `bench_lists` does). The console asks the platform for one page
(`aorta.v1.Jobs/Page`, a keyset page of the store); the baseline is Clara's whole `Jobs.List`
streamed over gRPC by a client that keeps nothing, which is what the console read for every
page before the platform paged:

- `grpc_full_list_ms`: a whole unfiltered `Jobs.List` (the median of `REPEATS`);
- `console_first_page_ms`: `GET /api/jobs?limit=50`, the jobs page's first request (median);
- `console_next_page_ms`: the page after it, by its cursor (median);
- `console_filtered_page_ms`: the first page of `state=STOPPED&pipeline_id=...` (median);
- `console_running_page_ms`: the first page of `state=RUNNING`, which no stored job matches:
  a filter that would scan the whole history without its index (median);
- `list_over_page`: the baseline's time over the first page's (target > 10: a page costs a
  small part of the list, whatever the history's size).

`AORTA_BENCH_CONSOLE_HISTORY` overrides the history's size (default 10,000, the figure the
console is asked to stay fast with).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from aorta.logger import configure_logging
from aorta.testing.embedded import aorta_up
from aorta.testing.ports import free_ports
from bench.bench_lists import first_message_ms, full_list, seed

HISTORY = int(os.environ.get("AORTA_BENCH_CONSOLE_HISTORY", "10000"))
REPEATS = 5
TARGET_RATIO = 10.0


async def _median_ms(action: Callable[[], Awaitable[Any]]) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        await action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def _measure(target: str, base: str) -> dict[str, float]:
    await first_message_ms(target)  # warms the platform's caches as the console's first call would
    figures: dict[str, float] = {}

    async def grpc_list() -> None:
        await full_list(target)

    figures["grpc_full_list_ms"] = await _median_ms(grpc_list)
    async with aiohttp.ClientSession(base) as session:

        async def page(params: dict[str, str]) -> dict[str, Any]:
            async with session.get("/api/jobs", params=params) as answer:
                assert answer.status == 200, await answer.text()
                body: dict[str, Any] = await answer.json()
                return body

        first = await page({"limit": "50"})
        assert len(first["items"]) == 50 and first["next_cursor"], first["next_cursor"]
        cursor = str(first["next_cursor"])
        figures["console_first_page_ms"] = await _median_ms(lambda: page({"limit": "50"}))
        figures["console_next_page_ms"] = await _median_ms(
            lambda: page({"limit": "50", "cursor": cursor})
        )
        filtered = {"limit": "50", "state": "STOPPED", "pipeline_id": "a" * 32}
        figures["console_filtered_page_ms"] = await _median_ms(lambda: page(filtered))
        running = {"limit": "50", "state": "RUNNING"}
        assert (await page(running))["items"] == []
        figures["console_running_page_ms"] = await _median_ms(lambda: page(running))
    figures["list_over_page"] = figures["grpc_full_list_ms"] / figures["console_first_page_ms"]
    return figures


def run() -> dict[str, object]:
    configure_logging("console", "warning")
    with tempfile.TemporaryDirectory(prefix="aorta-bench-console-") as root:
        data = Path(root) / "data"
        asyncio.run(seed(data, HISTORY, 0))
        port, web = free_ports(2)
        # Without authentication (on loopback), so the gRPC baseline needs no token either.
        args = ["--web-port", str(web), "--metrics-port", "0"]
        with aorta_up(data, port, args=args):
            base = f"http://127.0.0.1:{web}"
            figures = asyncio.run(_wait_then_measure(f"127.0.0.1:{port}", base))
    report: dict[str, object] = {"history": HISTORY, **{k: round(v, 2) for k, v in figures.items()}}
    report["target_list_over_page"] = TARGET_RATIO
    report["meets_target"] = figures["list_over_page"] > TARGET_RATIO
    return report


async def _wait_then_measure(target: str, base: str) -> dict[str, float]:
    async with aiohttp.ClientSession(base) as session:
        async with asyncio.timeout(60):
            while True:
                try:
                    async with session.get("/api/openapi.json") as answer:
                        if answer.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.2)
    return await _measure(target, base)
