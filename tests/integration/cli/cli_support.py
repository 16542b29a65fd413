"""What the CLI tests share: a sample pipeline (with imports) and input, and two ways to run
the commands against the fake platform: in process with click's runner, and as the real `aorta`
executable in a subprocess (where exit codes and terminals are what a user gets)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
from click.testing import CliRunner, Result

from aorta.cli import register

AORTA = Path(sys.executable).parent / "aorta"
"""The installed `aorta` command (`aorta_services.launch.main`, with the client commands)."""

ROOT_PIPELINE = """\
api-version: 0.4.0
name: seg-demo
orchestrator: Clara
operators:
- name: reader
  container: {image: reader, tag: "1"}
  input: [{path: /input}]
  output: [{path: /output}]
- import: ops/segment.yml
- name: writer
  container: {image: writer}
  input: [{from: segment, path: /input}, {path: /dicom}]
  output: [{path: /output}]
"""
SEGMENT_OPERATOR = """\
name: segment
container: {image: seg}
input: [{from: reader, path: /input}]
output: [{path: /output}]
services:
- import: {path: triton.yml}
"""
TRITON_SERVICE = "name: triton\ncontainer: {image: tritonserver}\n"


@dataclass
class Samples:
    definition: Path
    input_dir: Path
    inputs: dict[str, bytes]
    """Payload name -> bytes of every input file."""


def make_samples(tmp_path: Path) -> Samples:
    definition = tmp_path / "def" / "pipeline.yml"
    (definition.parent / "ops").mkdir(parents=True)
    definition.write_text(ROOT_PIPELINE)
    (definition.parent / "ops" / "segment.yml").write_text(SEGMENT_OPERATOR)
    (definition.parent / "ops" / "triton.yml").write_text(TRITON_SERVICE)
    inputs = {
        "scan.dcm": bytes(range(256)) * 600,  # 153,600 bytes: three 64 KiB chunks
        "notes/readme.txt": "résumé of the study\n".encode(),
        "empty.dat": b"",
    }
    input_dir = tmp_path / "input"
    for name, data in inputs.items():
        (input_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (input_dir / name).write_bytes(data)
    return Samples(definition, input_dir, inputs)


@dataclass
class Aorta:
    """Runs `aorta ARGS...` in process; `exe` runs the real command in a subprocess."""

    group: click.Group
    environ: dict[str, str]

    def __call__(self, *args: str | Path) -> Result:
        return CliRunner().invoke(self.group, [str(a) for a in args], env=self.environ)

    def exe(self, *args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(AORTA), *(str(a) for a in args)],
            env={**os.environ, **self.environ},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def root_group() -> click.Group:
    """A root group like aorta_services.launch.main's, with the client commands registered."""

    @click.group(context_settings={"help_option_names": ["-h", "--help"]})
    def aorta() -> None:
        """aorta"""

    register(aorta)
    return aorta
