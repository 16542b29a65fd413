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
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, ViewportSize, async_playwright, expect

from aorta.testing.embedded import aorta_up
from aorta.testing.ports import free_port
from tests.e2e.console_platform import (
    ARTIFACTS,
    COPY_PIPELINE,
    IDLE_PIPELINE,
    SCHEDULER,
    SLOW_PIPELINE,
    Console,
    chromium,
    make_token,
    wait_console,
)

pytestmark = pytest.mark.timeout(300)

DESKTOP: ViewportSize = {"width": 1280, "height": 800}
TABLET: ViewportSize = {"width": 820, "height": 1180}
LONG = 90_000
"""Milliseconds the browser waits for the platform's doing (a job to run, a cancel to land)."""

DROP = """(files) => {
  const transfer = new DataTransfer();
  for (const [name, encoded] of files) {
    const bytes = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], name));
  }
  return transfer;
}"""
"""A DataTransfer holding files (name, base64 bytes), as a drag from the desktop carries."""


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    root = tmp_path_factory.mktemp("console")
    data, port, web = root / "data", free_port(), free_port()
    args = ["--auth", "--web-port", str(web)]
    with aorta_up(data, port, environ=SCHEDULER, args=args):
        base = f"http://127.0.0.1:{web}"
        wait_console(base)
        yield Console(
            grpc_address=f"127.0.0.1:{port}",
            base=base,
            data=data,
            tokens={
                "admin": (data / "admin.token").read_text().strip(),
                "alice": make_token(data, "alice", "user"),
                "vera": make_token(data, "vera", "viewer"),
            },
        )


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


@asynccontextmanager
async def _signed_in(console: Console, who: str) -> AsyncIterator[Page]:
    """A fresh headless Chromium (no cookies) with `who` signed in through the sign-in page;
    on the way out, fails when the page asked any other origin or broke its CSP.

    Playwright's async API, on the test's own event loop (its sync API would run a second loop
    in this thread)."""
    executable = chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable)
        try:
            context = await browser.new_context(
                base_url=console.base, viewport=DESKTOP, accept_downloads=True
            )
            page = await context.new_page()
            elsewhere: list[str] = []
            refused: list[str] = []
            context.on(
                "request",
                lambda request: (
                    None if request.url.startswith(console.base) else elsewhere.append(request.url)
                ),
            )
            page.on(
                "console",
                lambda message: (
                    refused.append(message.text)
                    if "Content Security Policy" in message.text
                    else None
                ),
            )
            await page.goto("/")
            await expect(page.get_by_role("heading", name="Sign in to Aorta")).to_be_visible()
            await page.get_by_label("Token").fill(console.tokens[who])
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
            await expect(page.get_by_test_id("subject")).to_have_text(who)
            yield page
            await context.close()
            assert not elsewhere, f"the console asked other origins: {elsewhere}"
            assert not refused, f"the Content-Security-Policy refused: {refused}"
        finally:
            await browser.close()


async def _shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _cancelled(console: Console, job: str) -> None:
    if console.job_state("alice", job)[0] != "STOPPED":
        console.cli("alice", "cancel", "job", "-j", job)


async def test_a_user_runs_a_pipeline_from_dropped_files_and_follows_it(
    console: Console, pipelines: dict[str, str]
) -> None:
    scan = os.urandom(30_000)
    dropped_files = {"scan.raw": scan, "notes.txt": b"series 7, contrast\n"}
    async with _signed_in(console, "alice") as page:
        await page.get_by_role("link", name="Pipelines").click()
        await page.get_by_role("link", name="console-copy").click()
        await expect(page.locator("#pipeline-dag g[data-node=report]")).to_be_visible()
        await expect(page.locator(".source .code")).to_contain_text("name: console-copy")
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
        await expect(report).to_have_attribute("data-state", "PENDING")
        await page.evaluate("window.stillTheSamePage = true")
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
        await _shoot(page, "job")
        await page.set_viewport_size(TABLET)
        await _shoot(page, "job-tablet")


async def test_the_jobs_table_filters_pages_and_updates_live(
    console: Console, pipelines: dict[str, str]
) -> None:
    first = console.created_job("alice", pipelines["idle"], "idle-1")
    second = console.created_job("alice", pipelines["idle"], "idle-2")
    async with _signed_in(console, "alice") as page:
        await page.get_by_label("Pipeline").select_option(label="console-idle")
        await page.get_by_label("Per page").select_option("25")
        await page.get_by_role("button", name="Apply").click()
        rows = page.locator("tbody tr[data-job]")
        await expect(rows).to_have_count(2)
        assert "pipeline_id=" in page.url

        await page.goto(f"/#/jobs?pipeline_id={pipelines['idle']}&limit=1")
        await page.reload()
        await expect(page.locator("#jobs-count")).to_have_text("2 jobs")
        await expect(rows).to_have_count(1)
        await expect(page.locator(f"tr[data-job='{second}']")).to_be_visible()
        await page.get_by_role("button", name="Older →").click()
        await expect(page.locator(f"tr[data-job='{first}']")).to_be_visible()
        await expect(page.get_by_role("button", name="Older →")).to_be_disabled()
        await page.get_by_role("button", name="← Newer").click()
        await expect(page.locator(f"tr[data-job='{second}']")).to_be_visible()

        third = await asyncio.to_thread(console.created_job, "alice", pipelines["idle"], "idle-3")
        await expect(page.locator("#jobs-count")).to_have_text("3 jobs")
        await expect(page.locator(f"tr[data-job='{third}']")).to_be_visible()

        await page.get_by_role("button", name="Clear").click()
        await expect(page.get_by_label("Pipeline")).to_have_value("")
        assert "pipeline_id=" not in page.url


async def test_a_user_cancels_a_job_and_sees_why_another_waits(
    console: Console, pipelines: dict[str, str]
) -> None:
    running = console.started_job("alice", pipelines["slow"], "to-cancel")
    queued = ""
    try:
        async with _signed_in(console, "alice") as page:
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
            await _shoot(page, "jobs")
            await page.set_viewport_size(TABLET)
            await _shoot(page, "jobs-tablet")
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
        async with _signed_in(console, "vera") as page:
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
    async with _signed_in(console, "alice") as page:
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
                await _shoot(page, f"{name}{size}")
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_role("heading", name="Sign in to Aorta")).to_be_visible()
        await _shoot(page, "sign-in")


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
    async with _signed_in(console, "alice") as page:
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
        await _shoot(page, "node-gpu")


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
                await _shoot(page, "no-auth")
            finally:
                await browser.close()
