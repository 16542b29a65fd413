"""The output modes: `-o json|yaml|wide|name`, `--json` as `-o json`, `-q`, and how a mistyped
format is answered."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
import yaml

from aorta.cli.output import Mode, Output, table
from aorta.cli.output_format import OutputFormat, choose_mode, close_format, split_folder

DOCUMENT = {"job_id": "a" * 32, "name": "scan", "operators": [{"name": "seg"}]}


def _emit(mode: Mode, capsys: pytest.CaptureFixture[str]) -> str:
    Output(mode).emit(
        human=table(["JOB ID", "NAME"], [("a" * 32, "scan")]),
        wide=table(["JOB ID", "NAME", "OPERATORS"], [("a" * 32, "scan", "1")]),
        document=DOCUMENT,
        ids=["a" * 32],
        kind="job",
    )
    return capsys.readouterr().out


def test_json_and_yaml_print_the_same_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert json.loads(_emit(Mode.JSON, capsys)) == DOCUMENT
    assert yaml.safe_load(_emit(Mode.YAML, capsys)) == DOCUMENT


def test_name_prints_kind_slash_id_and_quiet_the_id(capsys: pytest.CaptureFixture[str]) -> None:
    assert _emit(Mode.NAME, capsys) == f"job/{'a' * 32}\n"
    assert _emit(Mode.QUIET, capsys) == f"{'a' * 32}\n"


def test_wide_adds_columns_to_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert _emit(Mode.HUMAN, capsys).splitlines()[0].split() == ["JOB", "ID", "NAME"]
    assert _emit(Mode.WIDE, capsys).splitlines()[0].split() == ["JOB", "ID", "NAME", "OPERATORS"]


def test_a_yaml_stream_opens_each_document(capsys: pytest.CaptureFixture[str]) -> None:
    output = Output(Mode.YAML)
    output.document({"n": 1}, stream=True)
    output.document({"n": 2}, stream=True)
    assert list(yaml.safe_load_all(capsys.readouterr().out)) == [{"n": 1}, {"n": 2}]


@pytest.mark.parametrize(
    ("output", "as_json", "quiet", "mode"),
    [
        (None, False, False, Mode.HUMAN),
        ("table", False, False, Mode.HUMAN),
        (None, True, False, Mode.JSON),
        ("json", True, False, Mode.JSON),
        ("yaml", False, False, Mode.YAML),
        ("wide", False, False, Mode.WIDE),
        ("name", False, False, Mode.NAME),
        (None, False, True, Mode.QUIET),
    ],
)
def test_the_options_choose_one_mode(
    output: str | None, as_json: bool, quiet: bool, mode: Mode
) -> None:
    assert choose_mode(output, as_json, quiet) is mode


@pytest.mark.parametrize(
    ("output", "as_json", "quiet"), [("yaml", True, False), ("json", False, True)]
)
def test_contradicting_options_are_usage_errors(output: str, as_json: bool, quiet: bool) -> None:
    with pytest.raises(click.UsageError):
        choose_mode(output, as_json, quiet)


def test_a_mistyped_format_names_the_formats_and_the_likely_one() -> None:
    with pytest.raises(click.BadParameter) as raised:
        OutputFormat().convert("jsn", None, None)
    assert "'jsn' is not an output format: use -o json|yaml|wide|name (did you mean -o json?)" in (
        raised.value.message
    )
    assert close_format("YML") == "yaml"
    assert close_format("results") is None


def test_where_a_folder_is_allowed_other_values_are_folders() -> None:
    folder_or_format = OutputFormat(folder_allowed=True)
    assert folder_or_format.convert("JSON", None, None) == "json"
    assert folder_or_format.convert("results", None, None) == "results"
    assert split_folder("json") == ("json", None)
    assert split_folder("results") == (None, Path("results"))
    with pytest.raises(click.BadParameter, match="give --results jsn"):
        folder_or_format.convert("jsn", None, None)
