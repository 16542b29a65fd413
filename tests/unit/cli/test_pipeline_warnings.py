"""`create pipeline` and `update pipeline` print the warnings of an accepted definition on stderr,
in every output mode, and keep stdout for the result."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from aorta.api import common_pb2, pipelines_pb2
from aorta.cli import pipelines
from aorta.cli.connection import Platform
from aorta.cli.output import Mode, Output
from aorta.cli.session import Session

WARNINGS = [
    "pipeline.yml:3:1: warning: unknown key `owner` in the pipeline is ignored; the keys of "
    "the pipeline are api-version, name",
    "pipeline.yml: warning: the operators form a chain 70 deep",
]


class _Pipelines:
    """Answers Create as the pipelines service answers a definition it accepted with warnings."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages

    def Create(self, requests: Iterator[Any], timeout: float) -> Any:
        list(requests)
        return pipelines_pb2.PipelinesCreateResponse(
            header=common_pb2.ResponseHeader(code=0, messages=self.messages),
            pipeline_id=common_pb2.Identifier(value="a" * 32),
        )


class _Platform:
    def __init__(self, messages: list[str]) -> None:
        self.pipelines = _Pipelines(messages)


def _session(mode: Mode, messages: list[str]) -> Session:
    return Session(Output(mode), None, cast(Platform, _Platform(messages)))


@pytest.mark.parametrize("mode", [Mode.HUMAN, Mode.JSON, Mode.QUIET])
def test_warnings_of_an_accepted_definition_go_to_stderr(
    mode: Mode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = tmp_path / "pipeline.yml"
    definition.write_text("api-version: 0.4.0\nname: demo\nowner: me\n")
    pipeline_id = pipelines.create(_session(mode, WARNINGS), definition)

    printed = capsys.readouterr()
    assert pipeline_id == "a" * 32
    assert printed.out == ""
    assert printed.err.splitlines() == [
        "warning: pipeline.yml:3:1: unknown key `owner` in the pipeline is ignored; the keys of "
        "the pipeline are api-version, name",
        "warning: pipeline.yml: the operators form a chain 70 deep",
    ]


def test_a_message_without_a_severity_is_printed_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = tmp_path / "pipeline.yml"
    definition.write_text("name: demo\n")

    pipelines.create(_session(Mode.HUMAN, ["something the platform said"]), definition)

    assert capsys.readouterr().err == "warning: something the platform said\n"
