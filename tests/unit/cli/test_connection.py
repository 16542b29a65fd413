"""Where the CLI connects: --host > AORTA_HOST > config file > 127.0.0.1:30031; and how a
streamed answer is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from aorta.api import common_pb2, jobs_pb2
from aorta.cli.connection import (
    DEFAULT_ADDRESS,
    checked_replies,
    config_path,
    normalize_address,
    request_header,
    resolve_target,
)
from aorta.cli.failures import ExitCode, PlatformFailure, UsageFailure


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("example.org", "example.org:30031"),
        ("example.org:31851", "example.org:31851"),
        ("10.0.0.5", "10.0.0.5:30031"),
        ("[::1]", "[::1]:30031"),
        ("[::1]:5000", "[::1]:5000"),
        (" grpc://host:1234 ", "host:1234"),
    ],
)
def test_a_host_without_a_port_gets_clara_s_port(given: str, expected: str) -> None:
    assert normalize_address(given, source="--host") == expected


@pytest.mark.parametrize("given", ["", "host:port", "host:0", "host:70000", "a:b:c", "[::1"])
def test_a_malformed_address_is_a_usage_failure_naming_its_source(given: str) -> None:
    with pytest.raises(UsageFailure) as caught:
        normalize_address(given, source="AORTA_HOST")
    assert caught.value.exit_code == ExitCode.USAGE
    assert caught.value.message.startswith("AORTA_HOST: ")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text("host: from-file:1111\n")
    return path


def test_the_flag_wins_over_everything(config: Path) -> None:
    environ = {"AORTA_HOST": "from-env:2222", "AORTA_CONFIG": str(config)}
    target = resolve_target("from-flag", environ)
    assert (target.address, target.source) == ("from-flag:30031", "--host")


def test_the_environment_wins_over_the_file(config: Path) -> None:
    environ = {"AORTA_HOST": "from-env:2222", "AORTA_CONFIG": str(config)}
    assert resolve_target(None, environ).address == "from-env:2222"


def test_the_file_wins_over_the_default(config: Path) -> None:
    target = resolve_target(None, {"AORTA_CONFIG": str(config)})
    assert (target.address, target.source) == ("from-file:1111", str(config))


def test_without_any_setting_the_default_is_used(tmp_path: Path) -> None:
    environ = {"AORTA_CONFIG": str(tmp_path / "missing.yaml")}
    assert resolve_target(None, environ).address == DEFAULT_ADDRESS == "127.0.0.1:30031"


def test_an_empty_config_file_is_no_setting(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("")
    environ = {"AORTA_CONFIG": str(tmp_path / "config.yaml")}
    assert resolve_target(None, environ).address == DEFAULT_ADDRESS


@pytest.mark.parametrize("text", ["host: [1, 2]\n", "- a list\n", "host: {unclosed\n"])
def test_a_broken_config_file_is_a_usage_failure(tmp_path: Path, text: str) -> None:
    (tmp_path / "config.yaml").write_text(text)
    with pytest.raises(UsageFailure, match=r"config\.yaml"):
        resolve_target(None, {"AORTA_CONFIG": str(tmp_path / "config.yaml")})


def test_the_config_file_defaults_to_the_home_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config_path({}) == tmp_path / ".aorta" / "config.yaml"


def test_requests_say_which_api_and_client_they_come_from() -> None:
    header = request_header()
    version = header.api_version
    assert (version.major, version.minor, version.patch) == (0, 8, 1)
    assert header.user_agent.startswith("aorta-cli/")


def test_a_stream_is_refused_by_its_first_reply_alone() -> None:
    refused = common_pb2.ResponseHeader(code=-4, messages=["not allowed"])
    with pytest.raises(PlatformFailure) as failure:
        list(checked_replies([jobs_pb2.JobsListResponse(header=refused)], "listing jobs"))
    assert failure.value.message.startswith("listing jobs failed")
    assert failure.value.message.endswith("not allowed")
    # Later replies carry no header of their own: only the first one is read.
    answered = [jobs_pb2.JobsListResponse(), jobs_pb2.JobsListResponse(header=refused)]
    assert list(checked_replies(answered, "listing jobs")) == answered
