"""The pipeline with a parallel branch that the observability tests run on `aorta up`
(`prepare`, then `left` and `right` side by side, each copying its input to its output), and
the `aorta` command pointed at a platform, which runs it as a user would."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

from aorta.testing.embedded import AORTA


def copy_script(seconds: float = 0.0) -> str:
    """An operator (Clara's driver API) that waits `seconds`, then copies its inputs."""
    return textwrap.dedent(
        f"""\
        import pathlib
        import shutil
        import time
        import clara

        def execute(driver, payload):
            time.sleep({seconds})
            target = pathlib.Path(payload.output_entries[0].path)
            for entry in payload.input_entries:
                shutil.copytree(entry.path, target, dirs_exist_ok=True)

        driver = clara.Driver(execute_handler=execute)
        driver.start()
        driver.wait_for_completion()
        """
    )


def definition(script: Path) -> str:
    """`prepare` copies the input; `left` and `right` both copy its output, side by side."""

    def operator(name: str, source: str) -> str:
        return textwrap.dedent(
            f"""\
            - name: {name}
              container:
                image: example/copy
                command: [python, -u, -m, aorta.driver.app, "{script}"]
              input: [{source}]
              output: [{{path: /output}}]
            """
        )

    return "api-version: 0.4.0\nname: branches\noperators:\n" + "".join(
        [
            operator("prepare", "{path: /input}"),
            operator("left", "{from: prepare, path: /input}"),
            operator("right", "{from: prepare, path: /input}"),
        ]
    )


class AortaCli:
    """The `aorta` command against the gateway on `grpc_port`."""

    def __init__(self, grpc_port: int) -> None:
        self.host = f"127.0.0.1:{grpc_port}"

    def aorta(self, *args: str) -> str:
        """Its standard output; the test fails, with both outputs, unless it exits 0."""
        env = {**os.environ, "AORTA_HOST": self.host, "NO_COLOR": "1"}
        done = subprocess.run(
            [AORTA, *args], capture_output=True, text=True, env=env, timeout=120, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def run_branches(self, folder: Path, inputs: Path, name: str, seconds: float = 0.0) -> str:
        """Runs the branch pipeline (each operator waiting `seconds`, its files in `folder`) on
        the files of `inputs` as job `name`, as a user would, until it ended HEALTHY; its id."""
        script = folder / "copy.py"
        script.write_text(copy_script(seconds))
        pipeline_file = folder / "branches.yml"
        pipeline_file.write_text(definition(script))
        pipeline = self.aorta("create", "pipeline", "-p", str(pipeline_file), "-q").strip()
        created = self.aorta("create", "job", "-p", pipeline, "-n", name, "-f", str(inputs))
        job = created.splitlines()[0].split(":", 1)[1]
        self.aorta("start", "job", "-j", job)
        watched = self.aorta("describe", "job", "-j", job, "--watch")
        assert "status: HEALTHY" in watched.split("\n\n")[-1]
        return job
