"""Renders pipeline.yml for the local executor: the scripts' folder becomes this checkout's.

The definition's commands name the scripts under the `OPERATORS_DIR` parameter, whose default
(/app) is where the example images keep them. The local executor runs commands on the host, so
for a local platform the parameter's default must be the `operators` folder next to this file.
Passing `OPERATORS_DIR` as a Jobs.Start variable does the same for one job; rendering does it
for every job of the pipeline, and works with clients that send no variables.

Usage: python render_pipeline.py [--operators-dir DIR] [-o FILE]   (default: stdout)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
PIPELINE = HERE / "pipeline.yml"
OPERATORS = HERE / "operators"
PARAMETER = "OPERATORS_DIR"


def render(operators_dir: Path = OPERATORS) -> str:
    """pipeline.yml with `OPERATORS_DIR` defaulting to `operators_dir` (made absolute)."""
    document = yaml.safe_load(PIPELINE.read_text())
    document["parameters"][PARAMETER] = str(operators_dir.resolve())
    return yaml.safe_dump(document, sort_keys=False, width=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--operators-dir", type=Path, default=OPERATORS)
    parser.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    text = render(args.operators_dir)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
