"""The operator runner in a real process: what scripts see, and how the process exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aorta.ids import JobId
from aorta.operator_env import (
    RESERVED_NAMES,
    OperatorEnvironment,
    PathEntry,
    input_entry_name,
    output_entry_name,
)

JOB = "0123456789abcdef0123456789abcdef"

# Prints what the runner gave the script, then copies its input files to its output folder.
REPORTING_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    def entries(items):
        return [[e.name, e.path] for e in items]

    print(json.dumps({
        "argv": sys.argv,
        "inputs": entries(clara_payload.input_entries),
        "outputs": entries(clara_payload.output_entries),
    }))
    target = Path(clara_payload.output_entries[0].path)
    for entry in clara_payload.input_entries:
        for path in Path(entry.path).iterdir():
            (target / path.name).write_text(path.read_text() + " via " + sys.argv[1])
    """
)

# Written against Clara's names only, as operators for Clara Deploy were.
CLARA_SCRIPT = textwrap.dedent(
    """
    from pathlib import Path

    import clara

    def execute(driver, payload):
        assert payload == clara_payload
        source = Path(payload.input_entries[0].path)
        target = Path(payload.output_entries[0].path)
        for path in sorted(source.iterdir()):
            (target / path.name).write_text(path.read_text().upper())
        print("done", driver.stage_name, driver.job_id)
        return True

    if __name__ == "__main__":
        driver = clara.Driver(execute_handler=execute)
        driver.start()
        driver.wait_for_completion()
    """
)

FAILING_SCRIPT = textwrap.dedent(
    """
    import clara

    def execute(driver, payload):
        raise RuntimeError("model file is corrupt")

    driver = clara.Driver(execute_handler=execute)
    driver.start()
    driver.wait_for_completion()
    """
)


def _host_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in RESERVED_NAMES}


def _run(
    module: str, script: Path, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-u", "-m", module, str(script), *args],
        env=_host_environ() | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _platform_env(stage: str, inputs: list[PathEntry], outputs: list[PathEntry]) -> dict[str, str]:
    return OperatorEnvironment(
        job_id=JobId(JOB),
        job_name="two-operators",
        stage_name=stage,
        inputs=tuple(inputs),
        outputs=tuple(outputs),
    ).to_env()


def test_the_two_operator_example_sees_the_documented_entries(tmp_path: Path) -> None:
    pipeline_input = tmp_path / "payload" / "input"
    segmentation = tmp_path / "payload" / "operators" / "operator1" / "segmentation-output"
    final = tmp_path / "payload" / "operators" / "operator2" / "final-output"
    for folder in (pipeline_input, segmentation, final):
        folder.mkdir(parents=True)
    (pipeline_input / "scan.txt").write_text("scan")
    script = tmp_path / "report.py"
    script.write_text(REPORTING_SCRIPT)

    first = _run(
        "aorta.driver.app",
        script,
        _platform_env(
            "operator1",
            [PathEntry(input_entry_name(None, None), str(pipeline_input))],
            [PathEntry(output_entry_name("operator1", "segmentation-output"), str(segmentation))],
        ),
        "operator1",
    )
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {
        "argv": [str(script), "operator1"],
        "inputs": [["payload", str(pipeline_input)]],
        "outputs": [["operator1/segmentation-output", str(segmentation)]],
    }

    second = _run(
        "nvidia_clara_pipeline_driver.app",
        script,
        _platform_env(
            "operator2",
            [PathEntry(input_entry_name("operator1", "segmentation-output"), str(segmentation))],
            [PathEntry(output_entry_name("operator2", "final-output"), str(final))],
        ),
        "operator2",
    )
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["inputs"] == [
        ["operator1/segmentation-output", str(segmentation)]
    ]
    assert json.loads(second.stdout)["outputs"] == [["operator2/final-output", str(final)]]
    assert (final / "scan.txt").read_text() == "scan via operator1 via operator2"


@pytest.mark.parametrize("module", ["nvidia_clara_pipeline_driver.app", "aorta.driver"])
def test_a_clara_script_runs_unmodified(tmp_path: Path, module: str) -> None:
    source, target = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    target.mkdir()
    (source / "note.txt").write_text("hello")
    script = tmp_path / "main.py"
    script.write_text(CLARA_SCRIPT)
    env = {
        "NVIDIA_CLARA_INPUTPATHS": f"payload:{source}",
        "NVIDIA_CLARA_OUTPUTPATHS": f"op/out:{target}",
        "NVIDIA_CLARA_STAGENAME": "op",
        "NVIDIA_CLARA_JOBID": JOB,
        "NVIDIA_CLARA_NOSYNCLOCK": "1",
    }
    result = _run(module, script, env)
    assert result.returncode == 0, result.stderr
    assert (target / "note.txt").read_text() == "HELLO"
    assert result.stdout.strip() == "done op 01234567-89ab-cdef-0123-456789abcdef"


def test_a_failing_script_exits_non_zero_with_the_reason(tmp_path: Path) -> None:
    script = tmp_path / "main.py"
    script.write_text(FAILING_SCRIPT)
    result = _run("nvidia_clara_pipeline_driver.app", script, {"NVIDIA_CLARA_NOSYNCLOCK": "1"})
    assert result.returncode == 1
    assert "execute raised RuntimeError: model file is corrupt" in result.stderr
    assert "DriverError" in result.stderr


def test_a_failure_the_script_never_waited_for_still_fails_the_process(tmp_path: Path) -> None:
    script = tmp_path / "main.py"
    script.write_text(FAILING_SCRIPT.replace("driver.wait_for_completion()", ""))
    result = _run("aorta.driver.app", script, {})
    assert result.returncode == 1
    assert "model file is corrupt" in result.stderr


def test_a_script_that_handles_the_failure_decides_the_exit_status(tmp_path: Path) -> None:
    script = tmp_path / "main.py"
    script.write_text(
        FAILING_SCRIPT.replace(
            "driver.wait_for_completion()",
            "try:\n    driver.wait_for_completion()\nexcept clara.Error:\n    print('handled')",
        )
    )
    result = _run("aorta.driver.app", script, {})
    assert (result.returncode, result.stdout.strip()) == (0, "handled")


def test_sys_exit_in_the_script_is_the_exit_status(tmp_path: Path) -> None:
    script = tmp_path / "main.py"
    script.write_text("import sys\nsys.exit(7)\n")
    assert _run("aorta.driver.app", script, {}).returncode == 7


def test_a_malformed_environment_stops_before_the_script(tmp_path: Path) -> None:
    script = tmp_path / "main.py"
    script.write_text("print('ran')\n")
    result = _run("aorta.driver.app", script, {"NVIDIA_CLARA_INPUTPATHS": "payload:/in;/input2"})
    assert result.returncode == 2
    assert result.stdout == ""
    assert "malformed operator environment" in result.stderr
    assert "NVIDIA_CLARA_INPUTPATHS" in result.stderr and "'/input2'" in result.stderr


def test_usage_errors(tmp_path: Path) -> None:
    missing = _run("nvidia_clara_pipeline_driver.app", tmp_path / "nope.py", {})
    assert missing.returncode == 2
    assert "no such script" in missing.stderr
    bare = subprocess.run(
        [sys.executable, "-m", "aorta.driver.app"],
        env=_host_environ(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bare.returncode == 2 and "usage:" in bare.stderr


def test_scripts_import_modules_beside_them(tmp_path: Path) -> None:
    (tmp_path / "helper.py").write_text("VALUE = 'beside'\n")
    script = tmp_path / "main.py"
    script.write_text("import helper\nprint(helper.VALUE, __name__)\n")
    result = _run("aorta.driver.app", script, {})
    assert (result.returncode, result.stdout.strip()) == (0, "beside __main__")
