"""The operator's environment, its exit status as reported, and the start error messages."""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

import pytest

from aorta.errors import Invalid
from aorta.executors import OperatorRun, Resources, RunOutcome, RunReason, VolumeBinding
from aorta.executors.local.executor import LocalExecutor
from aorta.executors.local.group_leader import describe_start_error, main
from aorta.executors.local.operator_user import OperatorUser
from aorta.executors.local.process_group import ExitStatus
from aorta.executors.local.run_environment import RunConfig, operator_environment
from aorta.executors.workspace import Workspace

JOB = "0123456789abcdef0123456789abcdef"
PAYLOAD = "fedcba9876543210fedcba9876543210"
CONFIG = RunConfig(
    python_bin_dir=Path("/platform/bin"),
    search_path="/usr/bin:/bin",
    user=OperatorUser("aorta-operator", 999, 999, switch=True),
    timezone=None,
    log_flush_interval=1.0,
    max_log_bytes=1 << 20,
    stop_grace=15.0,
    keep_workspaces=False,
)


def run_with(environment: dict[str, str], gpus: tuple[int, ...] = ()) -> OperatorRun:
    return OperatorRun(
        run_id="r",
        job_id=JOB,
        job_name="job",
        payload_id=PAYLOAD,
        operator="seg",
        attempt=1,
        image="i",
        tag="t",
        command=("python",),
        inputs=(VolumeBinding("reader/volume", "/input", "payloads/p/operators/reader/volume/"),),
        outputs=(VolumeBinding("seg/mask", "/output", "payloads/p/operators/seg/mask/"),),
        resources=Resources(gpu=len(gpus), gpu_devices=gpus),
        timeout=120.0,
        log_key="logs/j/seg.log",
        environment=environment,
    )


def test_the_environment_is_the_contract_over_a_small_base(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "w")

    env = operator_environment(run_with({"HOME": "/elsewhere", "LEVEL": "3"}), workspace, CONFIG)

    assert env == {
        "PATH": "/platform/bin:/usr/bin:/bin",
        "HOME": "/elsewhere",  # the operator's own variables win over the base
        "TMPDIR": str(workspace.tmp),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "LEVEL": "3",
        "NVIDIA_CLARA_JOBID": JOB,
        "NVIDIA_CLARA_JOBNAME": "job",
        "NVIDIA_CLARA_STAGENAME": "seg",
        "NVIDIA_CLARA_STAGETIMEOUT": "120",
        "NVIDIA_CLARA_PAYLOADID": PAYLOAD,
        "NVIDIA_CLARA_NOSYNCLOCK": "1",
        "NVIDIA_CLARA_INPUTPATHS": f"reader/volume:{workspace.folder}/volumes/input",
        "NVIDIA_CLARA_OUTPUTPATHS": f"seg/mask:{workspace.folder}/volumes/output",
        "CUDA_VISIBLE_DEVICES": "",
    }


def test_triton_addresses_become_the_contract_s_own(tmp_path: Path) -> None:
    run = run_with({"NVIDIA_TRITON_GRPCURI": "h:8001", "CLARA_TRITON_URI": "h:8000"}, gpus=(1,))

    env = operator_environment(run, Workspace(tmp_path), CONFIG)

    assert env["NVIDIA_TRITON_GRPCURI"] == "h:8001"
    assert env["NVIDIA_TRITON_HTTPURI"] == env["CLARA_TRITON_URI"] == "h:8000"
    assert env["NVIDIA_CLARA_TRTISURI"] == "h:8000"
    assert env["CUDA_VISIBLE_DEVICES"] == "1"


def test_a_reserved_variable_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="NVIDIA_CLARA_STAGENAME"):
        operator_environment(run_with({"NVIDIA_CLARA_STAGENAME": "x"}), Workspace(tmp_path), CONFIG)


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (ExitStatus(code=3), "exit code 3"),
        (ExitStatus(code=137, signal=signal.SIGKILL), "killed by SIGKILL (exit code 137)"),
        (ExitStatus(code=255, signal=127), "killed by signal 127 (exit code 255)"),
    ],
)
def test_exit_statuses_read_as_a_container_runtime_reports_them(
    status: ExitStatus, text: str
) -> None:
    assert status.describe() == text


@pytest.mark.parametrize(
    ("program", "code", "text"),
    [
        ("xyz", errno.ENOENT, "command 'xyz' not found on PATH"),
        ("./bin/xyz", errno.ENOENT, "command './bin/xyz' not found"),
        ("xyz", errno.EACCES, "command 'xyz' cannot be run: permission denied (is it executable?)"),
        ("xyz", errno.ENOEXEC, "command 'xyz' cannot be run: exec format error (a script needs"),
        ("xyz", errno.E2BIG, "command 'xyz' cannot be run: Argument list too long"),
    ],
)
def test_start_errors_say_what_to_fix(program: str, code: int, text: str) -> None:
    assert describe_start_error(program, OSError(code, os.strerror(code))).startswith(text)


def test_the_group_leader_refuses_a_malformed_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["group_leader.py", "1", "status"]) == 2
    assert "usage: group_leader.py PARENT_PID STATUS_FILE -- COMMAND..." in capsys.readouterr().err


def test_only_a_completed_run_succeeded() -> None:
    assert RunOutcome("r", RunReason.COMPLETED, 0).succeeded
    assert not RunOutcome("r", RunReason.FAILED, 0).succeeded


@pytest.mark.parametrize(
    "settings",
    [
        {"log_flush_interval": 0},
        {"max_log_bytes": 10},
        {"stop_grace": -1},
        {"close_grace": -1},
        {"finished_runs_kept": 0},
    ],
)
def test_nonsense_settings_are_refused(tmp_path: Path, settings: dict[str, float]) -> None:
    with pytest.raises(Invalid):
        LocalExecutor(object(), tmp_path, **settings)  # type: ignore[arg-type]
