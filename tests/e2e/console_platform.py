"""A secured `aorta up` with its web console, the people who use it, and Debian's Chromium
signed in as one of them, for the console's API and browser tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from playwright.async_api import Page, ViewportSize, async_playwright, expect

from aorta.testing.embedded import AORTA, aorta_up, make_token
from aorta.testing.ports import free_ports

CHROMIUM = "/usr/bin/chromium"

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"
"""Where the browser tests leave their screenshots (ignored by git)."""

SCHEDULER = {"AORTA_SCHEDULER_CPUS": "2", "AORTA_SCHEDULER_CPU_OVERCOMMIT": "1"}
"""Room for one operator at a time (each asks for the default 2 CPUs), so a second job queues
behind a running one and has a reason to show."""

COPY_PIPELINE = """\
api-version: 0.4.0
name: console-copy
parameters:
  GREETING: hello
operators:
- name: copy
  container:
    image: busybox
    command: [sh, -c, 'out=${NVIDIA_CLARA_OUTPUTPATHS#*:}; inp=${NVIDIA_CLARA_INPUTPATHS#*:};
      echo "greeting: ${{ GREETING }}"; echo "copy reads:"; ls "$inp"; sleep 4;
      mkdir -p "$out" && cp -r "$inp"/. "$out"/']
  input: [{path: /input}]
  output: [{path: /output}]
- name: report
  container:
    image: busybox
    command: [sh, -c, 'out=${NVIDIA_CLARA_OUTPUTPATHS#*:}; inp=${NVIDIA_CLARA_INPUTPATHS#*:};
      mkdir -p "$out" && cp -r "$inp"/. "$out"/ && echo "report wrote its copy"']
  input: [{from: copy, path: /input}]
  output: [{path: /output}]
"""
"""Two operators in a chain; the first says the GREETING it was started with and pauses a
few seconds (`gated_copy_pipeline` waits for a file instead, for a page that must see the
second PENDING)."""


def gated_copy_pipeline(gate: Path) -> str:
    """COPY_PIPELINE as `console-gated`, whose first operator waits until the file `gate`
    exists instead of pausing a few seconds: a page that must see the second operator PENDING
    sees it however long the machine takes to show it, and the test opens the gate after."""
    waits = f'until [ -e "{gate}" ]; do sleep 0.1; done;'
    return COPY_PIPELINE.replace("sleep 4;", waits).replace("console-copy", "console-gated")


SLOW_PIPELINE = """\
api-version: 0.4.0
name: console-slow
operators:
- name: wait
  container:
    image: busybox
    command: [sh, -c, 'echo waiting; sleep 600']
  input: [{path: /input}]
  output: [{path: /output}]
"""
"""One operator that runs until it is cancelled."""

IDLE_PIPELINE = SLOW_PIPELINE.replace("name: console-slow", "name: console-idle")
"""The same, under a name of its own, for jobs that are created and never started."""


def chromium() -> str:
    """Debian's Chromium, or a failure that says how to get it (the tests skip nothing)."""
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        raise AssertionError("Debian's chromium is missing: run `make setup` (it installs it)")
    return CHROMIUM if Path(CHROMIUM).exists() else str(shutil.which("chromium"))


def wait_console(base: str, timeout: float = 60.0) -> None:
    """Waits until the console at `base` answers `/api/whoami`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/whoami", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError) as refused:
            if time.monotonic() > deadline:
                message = f"the console did not answer at {base} within {timeout:.0f} s"
                raise TimeoutError(message) from refused
            time.sleep(0.2)


@dataclass(frozen=True)
class Console:
    """A running platform with its console: where it is, and its people's tokens."""

    grpc_address: str
    base: str
    data: Path
    tokens: dict[str, str]

    def cli(self, who: str, *args: str) -> str:
        """`aorta ARGS` as `who`; its output, the command's failure raised with its stderr."""
        env = {**os.environ, "AORTA_HOST": self.grpc_address, "AORTA_TOKEN": self.tokens[who]}
        env.pop("AORTA_CA", None)
        done = subprocess.run(
            [AORTA, *args], capture_output=True, text=True, env=env, timeout=180, check=False
        )
        assert done.returncode == 0, f"aorta {' '.join(args)}: {done.stderr}"
        return done.stdout

    def pipeline(self, who: str, folder: Path, definition: str) -> str:
        """The id of a new pipeline of `definition`, created by `who`."""
        path = folder / "pipeline.yaml"
        path.write_text(definition)
        return self.cli(who, "create", "pipeline", "-p", str(path), "-q").strip()

    def started_job(self, who: str, pipeline: str, name: str) -> str:
        """The id of a new job of `pipeline`, created and started by `who`."""
        return self.cli(who, "create", "job", "-p", pipeline, "-n", name, "-s", "-q").split()[0]

    def created_job(self, who: str, pipeline: str, name: str) -> str:
        """The id of a new job of `pipeline`, created by `who` and not started."""
        return self.cli(who, "create", "job", "-p", pipeline, "-n", name, "-q").split()[0]

    def api(self, who: str | None, method: str, path: str) -> tuple[int, dict[str, object]]:
        """One JSON API call as `who` (a bearer token; None: anonymous): status and body."""
        headers = {"X-Aorta-Console": "1", "Accept": "application/json"}
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        call = urllib.request.Request(f"{self.base}{path}", method=method, headers=headers)
        try:
            with urllib.request.urlopen(call, timeout=30) as answer:
                body = answer.read()
                status = answer.status
        except urllib.error.HTTPError as refused:
            body, status = refused.read(), refused.code
        return status, json.loads(body) if body else {}

    def job_state(self, who: str, job: str) -> tuple[str, str]:
        """The job's state and status, as the console's API gives them."""
        status, body = self.api(who, "GET", f"/api/jobs/{job}")
        assert status == 200, body
        return str(body["state"]), str(body["status"])


@contextmanager
def running_console(root: Path, people: dict[str, str]) -> Iterator[Console]:
    """`aorta up --auth` under `root` with its console, and a token for each of `people`
    (name: role) beside the admin's."""
    data, (port, web) = root / "data", free_ports(2)
    with aorta_up(data, port, environ=SCHEDULER, args=["--auth", "--web-port", str(web)]):
        base = f"http://127.0.0.1:{web}"
        wait_console(base)
        tokens = {"admin": (data / "admin.token").read_text().strip()}
        tokens.update({name: make_token(data, name, role) for name, role in people.items()})
        yield Console(grpc_address=f"127.0.0.1:{port}", base=base, data=data, tokens=tokens)


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


@asynccontextmanager
async def signed_in(console: Console, who: str) -> AsyncIterator[Page]:
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


async def shoot(page: Page, name: str) -> None:
    """A screenshot of the whole page into the artifacts folder, as `name`.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
