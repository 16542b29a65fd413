"""Locating the interpreter of NVIDIA's Clara client."""

from __future__ import annotations

from pathlib import Path

import pytest

from aorta.testing.clara_client import (
    CLARA_PYTHON_ENV,
    REPO_ROOT,
    ClaraClientMissing,
    clara_python,
    run_clara_python,
)


def test_default_is_the_checkouts_clara_venv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CLARA_PYTHON_ENV, raising=False)
    assert clara_python() == REPO_ROOT / ".clara-venv" / "bin" / "python"


def test_environment_overrides_the_interpreter(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    interpreter = tmp_path / "python"
    interpreter.write_text('#!/bin/sh\necho from-override "$@"\n')
    interpreter.chmod(0o755)
    monkeypatch.setenv(CLARA_PYTHON_ENV, str(interpreter))
    assert clara_python() == interpreter
    assert run_clara_python("pass", args=["x"]).stdout == "from-override -I -c pass x\n"


def test_missing_interpreter_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(CLARA_PYTHON_ENV, str(tmp_path / "absent" / "python"))
    with pytest.raises(ClaraClientMissing, match="make setup"):
        run_clara_python("pass")
