"""`aorta operator init|run-local`: the devkit through the command line."""

from __future__ import annotations

from pathlib import Path

from tests.integration.cli.cli_support import Aorta


def test_init_then_run_local_processes_the_sample(aorta: Aorta, tmp_path: Path) -> None:
    folder = tmp_path / "rescaler"
    made = aorta("operator", "init", "rescaler", "--dir", folder)
    assert made.exit_code == 0, made.output
    assert "main.py" in made.stdout and f"aorta operator run-local --dir {folder}" in made.stdout
    job = f"cd {folder} && aorta run -p def/one-operator-pipeline.yml -f local/input -o results"
    assert job in made.stdout
    output = tmp_path / "out"
    ran = aorta("operator", "run-local", "--dir", folder, "--output", output)
    assert ran.exit_code == 0, ran.output
    assert len((output / "sample.txt").read_text().split()) == 8


def test_init_refuses_a_folder_in_use_and_a_bad_name(aorta: Aorta, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    in_use = aorta("operator", "init", "taken", "--dir", tmp_path / "taken")
    assert in_use.exit_code == 1
    assert "already exists and is not an empty folder" in in_use.stderr
    bad = aorta("operator", "init", "bad name!", "--dir", tmp_path / "bad")
    assert bad.exit_code == 2


def test_run_local_exits_with_the_operator_s_code(aorta: Aorta, tmp_path: Path) -> None:
    folder = tmp_path / "failing"
    aorta("operator", "init", "failing", "--dir", folder)
    (folder / "main.py").write_text("raise SystemExit(7)\n")
    assert aorta("operator", "run-local", "--dir", folder).exit_code == 7
