"""`aorta agent fetch|push` as the containers run them: the click commands, their environment,
their exit codes (0 done, 1 bytes not moved, 2 a malformed environment)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

from aorta.agent.command import agent
from aorta.agent.plan import PLAN_VARIABLE, AgentPlan
from aorta.executors.port import VolumeBinding


def plan_env(tmp_path: Path, work: Path) -> dict[str, str]:
    plan = AgentPlan(
        inputs=(VolumeBinding("payload", "/input", "payloads/p/input/"),),
        outputs=(),
        log_key="logs/j/op.log",
        container="operator",
        work=str(work),
    )
    return {PLAN_VARIABLE: plan.to_json(), "AORTA_BLOB_STORE": f"file:///{tmp_path / 'blobs'}"}


def stored(tmp_path: Path, key: str, data: bytes) -> None:
    """An object of the local blob store, which keeps each object as the file of its key."""
    path = tmp_path / "blobs" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_fetch_fills_the_input_volume(tmp_path: Path) -> None:
    env = plan_env(tmp_path, tmp_path / "work")
    stored(tmp_path, "payloads/p/input/series/1.dcm", b"scan")

    result = CliRunner().invoke(agent, ["fetch"], env=env)

    assert result.exit_code == 0, result.output
    assert (tmp_path / "work/volumes/input/series/1.dcm").read_bytes() == b"scan"


def test_a_missing_plan_is_a_usage_error() -> None:
    result = CliRunner().invoke(agent, ["fetch"], env={PLAN_VARIABLE: ""})

    assert result.exit_code == 2
    assert f"{PLAN_VARIABLE} is not set" in result.output


def test_a_volume_that_cannot_be_written_fails_the_fetch(tmp_path: Path) -> None:
    blocked = tmp_path / "work"
    blocked.write_text("a file where the volumes should be")
    env = plan_env(tmp_path, blocked)
    stored(tmp_path, "payloads/p/input/a.dcm", b"A")

    result = CliRunner().invoke(agent, ["fetch"], env=env)

    assert result.exit_code == 1
    assert result.output.startswith("aorta agent: ")


def test_push_ignores_sigterm_and_outside_a_pod_says_it_has_no_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handlers: dict[int, object] = {}
    monkeypatch.setattr(
        signal, "signal", lambda number, handler: handlers.update({number: handler})
    )
    env = plan_env(tmp_path, tmp_path / "work") | {"KUBERNETES_SERVICE_HOST": ""}

    result = CliRunner().invoke(agent, ["push"], env=env)

    assert result.exit_code == 1
    assert "in-cluster service account" in result.output
    assert handlers[signal.SIGTERM] is signal.SIG_IGN
