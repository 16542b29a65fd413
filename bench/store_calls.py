"""The state store's calls per started job, by collection and method: `bench.job_cpu`'s jobs,
counted instead of timed.

`python -m bench.store_calls` wraps the SQLite collection's public methods in this process
(a call made inside another one is not counted again), creates `JOBS` one-operator jobs a
round on the platform `bench_jobs` builds, starts them all at once and prints the calls the
starts made (until every job stopped), per job, and those of the creates apart. It is not a
`make bench` module: it exists to compare versions (docs/performance.md).

Environment knobs: `JOBS` (default 50), `ROUNDS` (default 3, the first a warm-up that is not
counted).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
from collections import Counter
from collections.abc import AsyncGenerator, Callable
from typing import Any

from aorta.logger import configure_logging
from bench.bench_jobs import Platform, chain_definition, with_platform

JOBS = int(os.environ.get("JOBS", "50"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
METHODS = ("insert", "get", "find_one", "find", "count", "update", "delete", "delete_many")

calls: Counter[tuple[str, str]] = Counter()
_inside = contextvars.ContextVar("inside", default=False)


def _counted(method: str, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _inside.get():
            return await original(self, *args, **kwargs)
        calls[(self.name, method)] += 1
        token = _inside.set(True)
        try:
            return await original(self, *args, **kwargs)
        finally:
            _inside.reset(token)

    return wrapper


def _counted_pages(original: Callable[..., AsyncGenerator[Any, None]]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        pages = original(self, *args, **kwargs)
        try:
            while True:
                calls[(self.name, "pages")] += 1
                try:
                    page = await pages.__anext__()
                except StopAsyncIteration:
                    return
                yield page
        finally:
            await pages.aclose()

    return wrapper


def wrap_store(kind: type) -> None:
    """Counts every outermost call of the public methods of the collection class `kind` in
    `calls` (`pages`: each page read, and the read that found no more)."""
    for method in METHODS:
        setattr(kind, method, _counted(method, getattr(kind, method)))
    setattr(kind, "pages", _counted_pages(getattr(kind, "pages")))  # noqa: B009, B010


async def rounds(platform: Platform) -> dict[str, Any]:
    wrap_store(type(platform.context.store.collection("payloads")))
    pipeline_id = await platform.pipeline(chain_definition(1))
    created: list[dict[str, float]] = []
    started: list[dict[str, float]] = []
    for index in range(ROUNDS):
        before = Counter(calls)
        jobs = await asyncio.gather(
            *(platform.job(pipeline_id, f"job-{index}-{n}") for n in range(JOBS))
        )
        after_create = Counter(calls)
        await asyncio.gather(*(platform.start(job_id) for job_id in jobs))
        await asyncio.gather(*(platform.stopped[job_id] for job_id in jobs))
        # The releases follow the stopped events: let them land.
        await asyncio.sleep(1.0)
        if index:
            created.append(between(before, after_create))
            started.append(between(after_create, Counter(calls)))
    return {
        "jobs": JOBS,
        "rounds_counted": len(started),
        "per_created_job": created,
        "per_started_job": started,
        "total_per_started_job": [round(sum(r.values()), 2) for r in started],
        "payloads_per_started_job": [
            round(sum(n for k, n in r.items() if k.startswith("payloads.")), 2) for r in started
        ],
    }


def between(before: Counter[tuple[str, str]], after: Counter[tuple[str, str]]) -> dict[str, float]:
    """The calls made from `before` to `after`, per job, as "collection.method"."""
    spent = after - before
    return {f"{c}.{m}": round(n / JOBS, 2) for (c, m), n in sorted(spent.items())}


def run() -> dict[str, Any]:
    configure_logging("json", "error")
    return asyncio.run(with_platform(rounds))


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
