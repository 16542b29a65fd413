"""Writes what it sees (environment, payload entries, input files) to `seen.json` in its first
output, and copies every input file to that output under `copies/<entry>/`."""

import json
import os
import shutil
import sys
from pathlib import Path

import clara


def execute(driver, payload):
    target = Path(payload.output_entries[0].path)
    files = {}
    for entry in payload.input_entries:
        root = Path(entry.path)
        found = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        files[entry.name] = found
        for name in found:
            copy = target / "copies" / entry.name.replace("/", "_") / name
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / name, copy)
    seen = {
        "inputs": [[e.name, e.path] for e in payload.input_entries],
        "outputs": [[e.name, e.path] for e in payload.output_entries],
        "files": files,
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "executable": sys.executable,
        "job_id": str(driver.job_id),
        "job_name": driver.job_name,
        "stage": driver.stage_name,
    }
    (target / "seen.json").write_text(json.dumps(seen))
    print(f"reported {sum(len(v) for v in files.values())} input files")
    return True


driver = clara.Driver(execute_handler=execute)
driver.start()
driver.wait_for_completion()
