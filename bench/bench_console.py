"""What one page of the console's job list costs with a long history, against the gRPC list it
is made from.

One `aorta up` in a child process, its store seeded with `HISTORY` finished jobs (straight into
SQLite through the adapter, as `bench_lists` does). Clara's `Jobs.List` has no paging, so the
console reads the whole list for every page and keeps only the page (`aorta_services.web.paging`);
the baseline is that same whole list streamed over gRPC by a client that keeps nothing:

- `grpc_full_list_ms`: a whole unfiltered `Jobs.List` (the median of `REPEATS`);
- `console_first_page_ms`: `GET /api/jobs?limit=50`, the jobs page's first request (median);
- `console_next_page_ms`: the page after it, by its cursor (median);
- `console_filtered_page_ms`: the first page of `state=STOPPED&pipeline_id=...` (median);
- `page_over_list`: the first page's time over the baseline's (target < 2: paging and JSON
  cost less than the list itself).

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
from aorta.testing.ports import free_port
from bench.bench_lists import first_message_ms, full_list, seed

HISTORY = int(os.environ.get("AORTA_BENCH_CONSOLE_HISTORY", "10000"))
REPEATS = 5
TARGET_RATIO = 2.0


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
        assert first["total"] == HISTORY and len(first["items"]) == 50, {
            k: v for k, v in first.items() if k != "items"
        } | {"items": len(first["items"])}
        cursor = str(first["next_cursor"])
        figures["console_first_page_ms"] = await _median_ms(lambda: page({"limit": "50"}))
        figures["console_next_page_ms"] = await _median_ms(
            lambda: page({"limit": "50", "cursor": cursor})
        )
        filtered = {"limit": "50", "state": "STOPPED", "pipeline_id": "a" * 32}
        figures["console_filtered_page_ms"] = await _median_ms(lambda: page(filtered))
    figures["page_over_list"] = figures["console_first_page_ms"] / figures["grpc_full_list_ms"]
    return figures


def run() -> dict[str, object]:
    configure_logging("console", "warning")
    with tempfile.TemporaryDirectory(prefix="aorta-bench-console-") as root:
        data = Path(root) / "data"
        asyncio.run(seed(data, HISTORY, 0))
        port, web = free_port(), free_port()
        # Without authentication (on loopback), so the gRPC baseline needs no token either.
        args = ["--web-port", str(web), "--metrics-port", "0"]
        with aorta_up(data, port, args=args):
            base = f"http://127.0.0.1:{web}"
            figures = asyncio.run(_wait_then_measure(f"127.0.0.1:{port}", base))
    report: dict[str, object] = {"history": HISTORY, **{k: round(v, 2) for k, v in figures.items()}}
    report["target_page_over_list"] = TARGET_RATIO
    report["meets_target"] = figures["page_over_list"] < TARGET_RATIO
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
