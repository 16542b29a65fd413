"""The command grammar: Clara's verbs and nouns, and usage errors (exit code 2) caught before
anything is sent."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

import aorta
from aorta.cli import register

# Nothing listens here; a command that got past parsing would exit 4, not 2.
NOWHERE = "127.0.0.1:9"
JOB = "ab" * 16


def _group() -> click.Group:
    @click.group(context_settings={"help_option_names": ["-h", "--help"]})
    def aorta() -> None:
        """aorta"""

    register(aorta)
    return aorta


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(_group(), list(args), env={"AORTA_HOST": NOWHERE, **(env or {})})


def test_register_adds_clara_s_verbs_and_aorta_s_commands() -> None:
    assert sorted(_group().commands) == [
        "audit",
        "cancel",
        "create",
        "delete",
        "describe",
        "download",
        "get",
        "help",
        "list",
        "logs",
        "operator",
        "queue",
        "run",
        "start",
        "stop",
        "token",
        "update",
        "upload",
        "utilization",
        "version",
    ]


@pytest.mark.parametrize("noun", ["pipeline", "pipelines", "job", "jobs", "model", "models"])
def test_nouns_are_accepted_singular_and_plural(noun: str) -> None:
    result = invoke("list", noun, "--help")
    assert result.exit_code == 0 and "Usage:" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "job", "-n", "x"], "Missing option '-p'"),
        (["create", "job", "-p", "x", "-n", "x", "-o", "jsn"], "use -o json|yaml|wide|name"),
        (["list", "jobs", "--jsn"], "Did you mean '--json'?"),
        (["list", "jobs", "--output=jsn"], "(did you mean -o json?)"),
        (["list", "jobs", "-o", "yaml", "--json"], "--json means -o json"),
        (["list", "jobs", "-o", "name", "-q"], "cannot be combined with -o name"),
        (["list", "jbos"], "Did you mean 'jobs'?"),
        (["get", "jbos"], "Did you mean 'jobs'?"),
        (["describe", "job"], "name the job: JOB or -j JOB"),
        (["describe", "job", JOB, "-j", "cd" * 16], "two jobs named"),
        (["stop", "job"], "name the job"),
        (["delete", "job", JOB], "cannot be undone: add --yes"),
        (["help", "lst"], "Did you mean 'list'?"),
        (["help", "version", "extra"], "has no subcommand 'extra'"),
        (["run", "-p", "x", "-f", ".", "-o", "jsn"], "give --results jsn"),
        (["create", "job", "-p", JOB, "-n", "x", "--metadata", "novalue"], "key=value"),
        (["create", "job", "-p", JOB, "-n", "x", "--var", "a=1"], "--var needs --start"),
        (["create", "job", "-p", JOB, "-n", "x", "-i", "urgent"], "'urgent' is not one of"),
        (["describe", "job", "-j", JOB, "--json", "-q"], "cannot be combined with -o json"),
        (["describe", "job", "-j", JOB, "--interval", "0"], "x>=0.05"),
        (["list", "jobs", "--state", "sleeping"], "'sleeping' is not one of"),
        (["list", "jobs", "--created-after", "yesterday"], "is not a time"),
        (["create", "things"], "No such noun 'things' for create."),
        (["download", "/operators/*", "out"], "name exactly one source"),
        (["download", "-j", JOB, "--payload", JOB, "out"], "name exactly one source"),
        (["download", "-j", JOB, "a", "b", "c"], "at most a PATH_OR_GLOB and a DEST"),
        (["delete", "model"], "name a model"),
        (["logs"], "name the job"),
        (["logs", JOB, "seg", "extra"], "too many arguments: extra"),
        (["logs", JOB, "seg", "-o", "writer"], "two operators named: seg and -o writer"),
        (["create", "pipeline", "-p", "missing.yml"], "does not exist"),
    ],
)
def test_usage_errors_exit_2_before_any_call(args: list[str], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_a_malformed_host_is_a_usage_error() -> None:
    result = invoke("version", "--host", "host:99999")
    assert result.exit_code == 2
    assert "--host: 'host:99999' is not an address" in result.stderr


def test_a_broken_config_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("host: [1, 2]\n")
    result = CliRunner().invoke(
        _group(), ["version"], env={"AORTA_CONFIG": str(tmp_path / "config.yaml")}
    )
    assert result.exit_code == 2
    assert "`host` must be a string" in result.stderr


def test_a_command_that_parses_reaches_for_the_platform() -> None:
    result = invoke("describe", "job", "-j", JOB)
    assert result.exit_code == 4
    assert f"cannot reach the Aorta platform at {NOWHERE}" in result.stderr


def test_download_routes_to_files_by_default_and_to_model_by_noun() -> None:
    files = invoke("download", "--help")
    assert "files" in files.output and "model" in files.output
    assert "[PATH_OR_GLOB] DEST" in invoke("download", "-j", JOB, "--help").output
    assert "-m, --model" in invoke("download", "models", "--help").output


def test_logs_accepts_clara_s_job_noun() -> None:
    result = invoke("logs", "job", "-j", JOB, "-o", "seg")
    assert result.exit_code == 4  # parsed; the platform is what is missing


@pytest.mark.parametrize(
    "args",
    [
        ["get", "job", JOB],
        ["get", "jobs", "-j", JOB],
        ["describe", "job", JOB],
        ["stop", "job", JOB],
        ["cancel", "job", JOB],
        ["start", "job", JOB],
        ["list", "jobs", "-o", "json", "--json"],
        ["run", "-p", JOB, "-f", ".", "-o", "json"],
        ["download", "payload", JOB, "out"],
        ["download", "job", JOB, "/operators/*", "out"],
        ["download", "model", "seg", "out"],
    ],
)
def test_habits_parse_and_reach_for_the_platform(args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 4, result.output


def test_get_lists_without_an_id_and_describes_with_one() -> None:
    listing = invoke("get", "jobs", "--help")
    assert listing.exit_code == 0 and "Usage: aorta get jobs" in listing.output
    assert "--state" in listing.output
    described = invoke("get", "job", JOB, "--help")
    assert "--watch" in described.output and "--state" not in described.output


def test_help_prints_the_help_of_the_command_named() -> None:
    result = invoke("help", "list", "jobs")
    assert result.exit_code == 0
    assert result.output == invoke("list", "jobs", "--help").output
    assert "Commands:" in invoke("help").output


def test_version_q_prints_the_client_version_alone_without_a_platform() -> None:
    result = invoke("version", "-q")
    assert result.exit_code == 0
    assert result.stdout.strip() == aorta.__version__
