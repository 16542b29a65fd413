"""The web console in headless Chromium against a real `aorta up --auth`: a user signs in,
runs a pipeline from two dropped files and watches its DAG finish without reloading, reads an
operator's log, downloads an output and gets its bytes back, cancels a job and sees why another
waits; a viewer is refused a cancel and bytes, and sees the refusals. Every page is
photographed into tests/artifacts/console/ at desktop and tablet sizes."""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright

from aorta.testing.embedded import aorta_up
from aorta.testing.ports import free_port
from tests.e2e.console_platform import (
    ARTIFACTS,
    COPY_PIPELINE,
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
    args = ["--auth", "--web-port", str(web), "--metrics-port", "0"]
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
    }


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable)
        yield launched
        launched.close()


def _page(browser: Browser, console: Console, who: str) -> Page:
    """A fresh browser (no cookies) with `who` signed in through the sign-in page."""
    context = browser.new_context(base_url=console.base, viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in to Aorta")).to_be_visible()
    page.get_by_label("Token").fill(console.tokens[who])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    expect(page.get_by_test_id("subject")).to_have_text(who)
    return page


def _shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _cancelled(console: Console, job: str) -> None:
    if console.job_state("alice", job)[0] != "STOPPED":
        console.cli("alice", "cancel", "job", "-j", job)


def test_a_user_runs_a_pipeline_from_dropped_files_and_follows_it(
    browser: Browser, console: Console, pipelines: dict[str, str]
) -> None:
    scan = os.urandom(30_000)
    dropped_files = {"scan.raw": scan, "notes.txt": b"series 7, contrast\n"}
    page = _page(browser, console, "alice")
    page.get_by_role("link", name="Pipelines").click()
    page.get_by_role("link", name="console-copy").click()
    expect(page.locator("#pipeline-dag g[data-node=report]")).to_be_visible()
    expect(page.locator(".source .code")).to_contain_text("name: console-copy")
    page.get_by_label("Job name").fill("dropped")
    dropped = page.evaluate_handle(
        DROP, [[name, base64.b64encode(body).decode()] for name, body in dropped_files.items()]
    )
    page.dispatch_event("#run-dropzone", "drop", {"dataTransfer": dropped})
    expect(page.locator("#run-files li")).to_have_count(2)
    page.get_by_role("button", name="Create and start").click()

    expect(page.get_by_role("heading", name="dropped")).to_be_visible()
    report = page.locator("#job-dag g[data-node=report]")
    expect(report).to_have_attribute("data-state", "PENDING")
    page.evaluate("window.stillTheSamePage = true")
    expect(report).to_have_attribute("data-state", "COMPLETED", timeout=LONG)
    expect(page.locator("#job-dag g[data-node=copy]")).to_have_attribute("data-state", "COMPLETED")
    assert page.evaluate("window.stillTheSamePage === true"), "the page reloaded"
    expect(page.locator("#job-badges")).to_contain_text("STOPPED", timeout=LONG)

    page.locator("#job-dag g[data-node=copy]").click()
    expect(page.locator("#log-text")).to_contain_text("copy reads:")
    expect(page.locator("#log-text")).to_contain_text("scan.raw")

    output = page.locator("#payload-files tr[data-file='/operators/report/scan.raw']")
    expect(output).to_be_visible(timeout=LONG)
    with page.expect_download() as downloading:
        output.get_by_role("link", name="Download /operators/report/scan.raw").click()
    assert Path(downloading.value.path()).read_bytes() == scan
    _shoot(page, "job")
    page.set_viewport_size(TABLET)
    _shoot(page, "job-tablet")
    page.context.close()


def test_a_user_cancels_a_job_and_sees_why_another_waits(
    browser: Browser, console: Console, pipelines: dict[str, str]
) -> None:
    running = console.started_job("alice", pipelines["slow"], "to-cancel")
    queued = console.started_job("alice", pipelines["slow"], "queued")
    try:
        page = _page(browser, console, "alice")
        row = page.locator(f"tr[data-job='{queued}']")
        expect(row.locator("td.reason")).not_to_be_empty(timeout=LONG)
        _shoot(page, "jobs")
        page.set_viewport_size(TABLET)
        _shoot(page, "jobs-tablet")
        page.set_viewport_size(DESKTOP)

        row.get_by_role("link").click()
        expect(page.locator("#waiting-reason")).to_be_visible()
        expect(page.locator("#waiting-reason")).to_contain_text("Waiting:")

        page.goto(f"/#/jobs/{running}")
        expect(page.locator("#job-badges")).to_contain_text("RUNNING", timeout=LONG)
        page.get_by_role("button", name="Cancel").click()
        expect(page.locator("#job-badges")).to_contain_text("CANCELED", timeout=LONG)
        expect(page.locator("#job-badges")).to_contain_text("STOPPED")
        page.context.close()
    finally:
        _cancelled(console, queued)
        _cancelled(console, running)


def test_a_viewer_is_refused_a_cancel_and_bytes_and_sees_it(
    browser: Browser, console: Console, pipelines: dict[str, str], folder: Path
) -> None:
    inputs = folder / "viewer-input"
    inputs.mkdir()
    (inputs / "scan.raw").write_bytes(os.urandom(4_000))
    ran = console.cli("alice", "run", "-p", pipelines["copy"], "-n", "finished", "-f", str(inputs))
    finished = next(line for line in ran.splitlines() if line.startswith("JOB_ID:")).split(":")[1]
    running = console.started_job("alice", pipelines["slow"], "viewed")
    try:
        page = _page(browser, console, "vera")
        page.goto(f"/#/jobs/{running}")
        page.get_by_role("button", name="Cancel").click()
        expect(page.locator("#action-result")).to_contain_text("Cancel refused")
        assert console.job_state("alice", running)[0] != "STOPPED"

        page.goto(f"/#/jobs/{finished}")
        asked = page.get_by_role("button", name="Download /input/scan.raw")
        asked.click()
        expect(page.locator("#toast")).to_contain_text("Download refused")
        download = f"/api/payloads/{_payload(console, finished)}/download?name=/input/scan.raw"
        status, body = console.api("vera", "GET", download)
        assert status == 403 and "error" in body
        page.context.close()
    finally:
        _cancelled(console, running)


def _payload(console: Console, job: str) -> str:
    status, body = console.api("alice", "GET", f"/api/jobs/{job}")
    assert status == 200, body
    return str(body["payload_id"])


def test_every_page_is_drawn_at_desktop_and_tablet_sizes(
    browser: Browser, console: Console, pipelines: dict[str, str]
) -> None:
    page = _page(browser, console, "alice")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    pages = {
        "pipelines": ("/#/pipelines", "#pipelines"),
        "pipeline": (f"/#/pipelines/{pipelines['copy']}", "#pipeline-dag svg"),
        "models": ("/#/models", "main h1"),
        "node": ("/#/node", "main h1"),
    }
    for name, (address, drawn) in pages.items():
        for size, viewport in (("", DESKTOP), ("-tablet", TABLET)):
            page.set_viewport_size(viewport)
            page.goto(address)
            expect(page.locator(drawn).first).to_be_visible()
            _shoot(page, f"{name}{size}")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to Aorta")).to_be_visible()
    _shoot(page, "sign-in")
    page.context.close()
