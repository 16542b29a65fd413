"""The web console in headless Chromium against a real `aorta up --auth`: a user signs in,
runs a pipeline from two dropped files and a variable and watches its DAG finish without
reloading, reads an operator's log, downloads an output and gets its bytes back, filters and
pages the jobs table and sees a new job arrive, cancels a job and sees why another waits; a
viewer is refused a cancel and bytes, and sees the refusals; a platform without auth says so.
Every page is photographed into tests/artifacts/console/ at desktop and tablet sizes."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import async_playwright, expect

from aorta.testing.embedded import aorta_up
from aorta.testing.ports import free_port
from tests.e2e.console_platform import (
    COPY_PIPELINE,
    DESKTOP,
    DROP,
    IDLE_PIPELINE,
    LONG,
    SLOW_PIPELINE,
    TABLET,
    Console,
    chromium,
    gated_copy_pipeline,
    running_console,
    shoot,
    signed_in,
    wait_console,
)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    people = {"alice": "user", "vera": "viewer"}
    with running_console(tmp_path_factory.mktemp("console"), people) as running:
        yield running


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="aorta-console-") as made:
        yield Path(made)


@pytest.fixture(scope="module")
def pipelines(console: Console, folder: Path) -> dict[str, str]:
    return {
        "copy": console.pipeline("alice", folder, COPY_PIPELINE),
        "slow": console.pipeline("alice", folder, SLOW_PIPELINE),
        "idle": console.pipeline("alice", folder, IDLE_PIPELINE),
    }


def _cancelled(console: Console, job: str) -> None:
    if console.job_state("alice", job)[0] != "STOPPED":
        console.cli("alice", "cancel", "job", "-j", job)


async def test_a_user_runs_a_pipeline_from_dropped_files_and_follows_it(
    console: Console, folder: Path, tmp_path: Path
) -> None:
    gate = tmp_path / "copy-may-finish"
    gated = gated_copy_pipeline(gate)
    await asyncio.to_thread(console.pipeline, "alice", folder, gated)
    try:
        await _run_dropped_files_and_follow(console, gate)
    finally:
        # A failed test leaves no operator waiting on the platform.
        await asyncio.to_thread(gate.touch)


async def _run_dropped_files_and_follow(console: Console, gate: Path) -> None:
    scan = os.urandom(30_000)
    dropped_files = {"scan.raw": scan, "notes.txt": b"series 7, contrast\n"}
    async with signed_in(console, "alice") as page:
        await page.get_by_role("link", name="Pipelines").click()
        await page.get_by_role("link", name="console-gated").click()
        await expect(page.locator("#pipeline-dag g[data-node=report]")).to_be_visible()
        await expect(page.locator(".source .code")).to_contain_text("name: console-gated")
        await page.get_by_label("Job name").fill("dropped")
        dropped = await page.evaluate_handle(
            DROP, [[name, base64.b64encode(body).decode()] for name, body in dropped_files.items()]
        )
        await page.dispatch_event("#run-dropzone", "drop", {"dataTransfer": dropped})
        await expect(page.locator("#run-files li")).to_have_count(2)
        await page.get_by_role("button", name="Add variable").click()
        await page.locator("#run-variables .var-name").fill("GREETING")
        await page.locator("#run-variables .var-value").fill("bonjour")
        await page.get_by_role("button", name="Create and start").click()

        await expect(page.get_by_role("heading", name="dropped")).to_be_visible()
        report = page.locator("#job-dag g[data-node=report]")
        await expect(report).to_have_attribute("data-state", "PENDING", timeout=LONG)
        await page.evaluate("window.stillTheSamePage = true")
        await asyncio.to_thread(gate.touch)
        await expect(report).to_have_attribute("data-state", "COMPLETED", timeout=LONG)
        copy = page.locator("#job-dag g[data-node=copy]")
        await expect(copy).to_have_attribute("data-state", "COMPLETED")
        assert await page.evaluate("window.stillTheSamePage === true"), "the page reloaded"
        await expect(page.locator("#job-badges")).to_contain_text("STOPPED", timeout=LONG)

        await copy.click()
        await expect(page.locator("#log-text")).to_contain_text("greeting: bonjour")
        await expect(page.locator("#log-text")).to_contain_text("copy reads:")
        await expect(page.locator("#log-text")).to_contain_text("scan.raw")

        output = page.locator("#payload-files tr[data-file='/operators/report/scan.raw']")
        await expect(output).to_be_visible(timeout=LONG)
        async with page.expect_download() as downloading:
            await output.get_by_role("link", name="Download /operators/report/scan.raw").click()
        saved = await (await downloading.value).path()
        assert await asyncio.to_thread(Path(saved).read_bytes) == scan
        await shoot(page, "job")
        await page.set_viewport_size(TABLET)
        await shoot(page, "job-tablet")


async def test_the_jobs_table_filters_pages_and_updates_live(
    console: Console, pipelines: dict[str, str]
) -> None:
    first = console.created_job("alice", pipelines["idle"], "idle-1")
    second = console.created_job("alice", pipelines["idle"], "idle-2")
    async with signed_in(console, "alice") as page:
        await page.get_by_label("Pipeline").select_option(label="console-idle")
        await page.get_by_label("Per page").select_option("25")
        await page.get_by_role("button", name="Apply").click()
        rows = page.locator("tbody tr[data-job]")
        await expect(rows).to_have_count(2)
        assert "pipeline_id=" in page.url

        await page.goto(f"/#/jobs?pipeline_id={pipelines['idle']}&limit=1")
        await page.reload()
        await expect(page.locator("#jobs-count")).to_have_text(
            "1 job on this page, older ones follow"
        )
        await expect(rows).to_have_count(1)
        await expect(page.locator(f"tr[data-job='{second}']")).to_be_visible()
        await page.get_by_role("button", name="Older →").click()
        await expect(page.locator(f"tr[data-job='{first}']")).to_be_visible()
        await expect(page.get_by_role("button", name="Older →")).to_be_disabled()
        await page.get_by_role("button", name="← Newer").click()
        await expect(page.locator(f"tr[data-job='{second}']")).to_be_visible()

        third = await asyncio.to_thread(console.created_job, "alice", pipelines["idle"], "idle-3")
        await expect(page.locator(f"tr[data-job='{third}']")).to_be_visible()
        await expect(page.locator("#jobs-count")).to_have_text(
            "1 job on this page, older ones follow"
        )

        await page.get_by_role("button", name="Clear").click()
        await expect(page.get_by_label("Pipeline")).to_have_value("")
        assert "pipeline_id=" not in page.url


async def test_a_user_cancels_a_job_and_sees_why_another_waits(
    console: Console, pipelines: dict[str, str]
) -> None:
    running = console.started_job("alice", pipelines["slow"], "to-cancel")
    queued = ""
    try:
        async with signed_in(console, "alice") as page:
            badges = page.locator("#job-badges")
            await page.goto(f"/#/jobs/{running}")
            await expect(badges).to_contain_text("RUNNING", timeout=LONG)
            # Started once the first holds the node's CPUs, so this one waits behind it.
            queued = await asyncio.to_thread(
                console.started_job, "alice", pipelines["slow"], "queued"
            )
            await page.get_by_role("link", name="Jobs", exact=True).click()
            row = page.locator(f"tr[data-job='{queued}']")
            await expect(row.locator("td.reason")).not_to_be_empty(timeout=LONG)
            await shoot(page, "jobs")
            await page.set_viewport_size(TABLET)
            await shoot(page, "jobs-tablet")
            await page.set_viewport_size(DESKTOP)

            await row.get_by_role("link").click()
            await expect(page.locator("#waiting-reason")).to_contain_text("Waiting:")

            await page.goto(f"/#/jobs/{running}")
            await expect(badges).to_contain_text("RUNNING")
            await page.get_by_role("button", name="Cancel").click()
            await expect(badges).to_contain_text("CANCELED", timeout=LONG)
            await expect(badges).to_contain_text("STOPPED")

            await page.goto(f"/#/jobs/{queued}")
            await expect(badges).to_contain_text("RUNNING", timeout=LONG)
            await expect(page.locator("#waiting-reason")).to_be_hidden()
    finally:
        for job in (queued, running):
            if job:
                _cancelled(console, job)


async def test_a_viewer_is_refused_a_cancel_and_bytes_and_sees_it(
    console: Console, pipelines: dict[str, str], folder: Path
) -> None:
    inputs = folder / "viewer-input"
    inputs.mkdir()
    (inputs / "scan.raw").write_bytes(os.urandom(4_000))
    ran = console.cli("alice", "run", "-p", pipelines["copy"], "-n", "finished", "-f", str(inputs))
    finished = next(line for line in ran.splitlines() if line.startswith("JOB_ID:")).split(":")[1]
    payload = _payload(console, finished)
    running = console.started_job("alice", pipelines["slow"], "viewed")
    try:
        async with signed_in(console, "vera") as page:
            await page.goto(f"/#/jobs/{running}")
            await page.get_by_role("button", name="Cancel").click()
            await expect(page.locator("#action-result")).to_contain_text("Cancel refused")
            state = await asyncio.to_thread(console.job_state, "alice", running)
            assert state[0] != "STOPPED"

            await page.goto(f"/#/jobs/{finished}")
            await page.get_by_role("button", name="Download /input/scan.raw").click()
            await expect(page.locator("#toast")).to_contain_text("Download refused")
        download = f"/api/payloads/{payload}/download?name=/input/scan.raw"
        status, body = console.api("vera", "GET", download)
        assert status == 403 and "error" in body
    finally:
        _cancelled(console, running)


def _payload(console: Console, job: str) -> str:
    status, body = console.api("alice", "GET", f"/api/jobs/{job}")
    assert status == 200, body
    return str(body["payload_id"])


async def test_every_page_is_drawn_at_desktop_and_tablet_sizes(
    console: Console, pipelines: dict[str, str]
) -> None:
    pages = {
        "pipelines": ("/#/pipelines", "#pipelines"),
        "pipeline": (f"/#/pipelines/{pipelines['copy']}", "#pipeline-dag svg"),
        "models": ("/#/models", "main h1"),
        "node": ("/#/node", "main h1"),
    }
    async with signed_in(console, "alice") as page:
        await page.goto("/#/pipelines")
        await page.reload()
        await expect(page.locator("#pipelines")).to_be_visible()
        await page.keyboard.press("Tab")
        await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
        await page.keyboard.press("Enter")
        await expect(page.locator("main")).to_be_focused()
        await expect(page.locator("#pipelines")).to_be_visible()
        for name, (address, drawn) in pages.items():
            for size, viewport in (("", DESKTOP), ("-tablet", TABLET)):
                await page.set_viewport_size(viewport)
                await page.goto(address)
                await expect(page.locator(drawn).first).to_be_visible()
                await shoot(page, f"{name}{size}")
        await page.goto("/#/jobs/" + "0" * 32)
        await expect(page.get_by_role("heading", name="Not found")).to_be_visible()
        await expect(page.get_by_role("alert")).not_to_be_empty()
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_role("heading", name="Sign in to Aorta")).to_be_visible()
        await shoot(page, "sign-in")


def _samples(now: datetime) -> dict[str, object]:
    """A utilization answer (the OpenAPI file's `Utilization`) of one busy GPU over 5 minutes."""

    def sample(seconds_ago: int, busy: float) -> dict[str, object]:
        return {
            "node_id": "node-1",
            "pcie_id": 0,
            "time": (now - timedelta(seconds=seconds_ago)).isoformat(),
            "compute_utilization": busy,
            "memory_used": 4 << 30,
            "memory_free": 12 << 30,
            "memory_utilization": 25.0,
        }

    current = {**sample(0, 72.0), "processes": [{"name": "tritonserver", "job_id": None}]}
    history = [sample(ago, 40.0 + ago % 50) for ago in range(300, 0, -10)]
    return {"current": [current], "history": history}


async def test_the_node_page_charts_a_gpus_utilization_and_memory(console: Console) -> None:
    # The test machines have no GPU, so the platform's answer is replaced by one with a GPU
    # (the shape of the OpenAPI file's Utilization) to draw the chart the page is for.
    answer = json.dumps(_samples(datetime.now(UTC)))
    async with signed_in(console, "alice") as page:
        await page.route(
            "**/api/utilization*",
            lambda route: route.fulfill(content_type="application/json", body=answer),
        )
        await page.get_by_role("link", name="Node").click()
        gpu = page.get_by_role("region", name="node-1 · GPU 0")
        await expect(gpu).to_contain_text("72% busy · 4.0 GiB of 16.0 GiB memory used")
        await expect(gpu.locator("svg path.series-util")).to_have_count(1)
        await expect(gpu.locator("svg path.series-memory")).to_have_count(1)
        await expect(gpu).to_contain_text("tritonserver")
        await shoot(page, "node-gpu")


async def test_a_platform_without_auth_says_so_in_a_banner(tmp_path: Path) -> None:
    web = free_port()
    with aorta_up(tmp_path / "data", free_port(), args=["--web-port", str(web)]):
        base = f"http://127.0.0.1:{web}"
        await asyncio.to_thread(wait_console, base)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium())
            try:
                page = await browser.new_page(base_url=base, viewport=DESKTOP)
                await page.goto("/")
                await expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
                banner = page.get_by_role("status").filter(has_text="does not authenticate")
                await expect(banner).to_be_visible()
                await expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
                await shoot(page, "no-auth")
            finally:
                await browser.close()


LAYOUT = """async () => {
  const { layout } = await import("/js/dag.js");
  const { bytes, duration } = await import("/js/format.js");
  const place = (nodes, edges) => {
    const placed = layout(nodes, edges.map(([from, to]) => ({ from, to })));
    return Object.fromEntries([...placed].map(([name, p]) => [name, [p.layer, p.row]]));
  };
  return {
    diamond: place(["a", "b", "c", "d"], [["a", "b"], ["a", "c"], ["b", "d"], ["c", "d"]]),
    // Sources listed after the operators reading them, and a crossing the order would make.
    crossed: place(["x2", "x1", "y1", "y2", "s1", "s2"],
      [["s1", "x1"], ["s2", "x2"], ["x1", "y1"], ["x2", "y2"]]),
    cycle: place(["p", "q"], [["p", "q"], ["q", "p"]]),
    texts: [duration(4.25), duration(125), duration(3725), bytes(512), bytes(1536)],
  };
}"""
"""The page's pure layout and formatting functions, run in the browser that runs the pages."""


async def test_the_dag_layout_and_formats_in_the_browser(console: Console) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium())
        try:
            page = await browser.new_page(base_url=console.base)
            await page.goto("/")
            found = await page.evaluate(LAYOUT)
        finally:
            await browser.close()
    assert found["diamond"] == {"a": [0, 0], "b": [1, 0], "c": [1, 1], "d": [2, 0]}
    crossed = found["crossed"]
    assert [crossed[name][0] for name in ("s1", "s2", "x1", "x2", "y1", "y2")] == [0, 0, 1, 1, 2, 2]
    # Each operator sits on its source's row, so no two edges cross.
    assert crossed["x1"][1] == crossed["s1"][1] and crossed["y1"][1] == crossed["x1"][1]
    assert crossed["x2"][1] == crossed["s2"][1] and crossed["y2"][1] == crossed["x2"][1]
    assert sorted(found["cycle"]) == ["p", "q"]
    assert found["texts"] == ["4.3s", "2m 05s", "1h 02m", "512 B", "1.5 KiB"]
