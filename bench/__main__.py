"""`make bench`: runs every `bench/bench_*.py` module and prints its report.

Each benchmark module exposes `run() -> dict[str, object]` returning its figures, measured side
by side with a baseline in the same run so the ratios are what matters, not absolute seconds.
The reports are also written as JSON under `bench/results/`.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(selected: list[str]) -> int:
    names = sorted(path.stem for path in HERE.glob("bench_*.py"))
    if selected:
        names = [name for name in names if any(s in name for s in selected)]
    if not names:
        print("no benchmarks found")
        return 0
    results_dir = HERE / "results"
    results_dir.mkdir(exist_ok=True)
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"== {name}", flush=True)
        report = module.run()
        for key, value in report.items():
            print(f"  {key}: {value}")
        (results_dir / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
