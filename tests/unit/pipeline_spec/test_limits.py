"""load_pipeline refuses, cleanly and with a position, what it cannot or must not read."""

from __future__ import annotations

import pytest

from aorta.errors import ErrorCode
from aorta.pipeline_spec import (
    MAX_DEFINITION_BYTES,
    MAX_OPERATORS,
    DefinitionError,
    load_pipeline,
)

HEAD = "api-version: 0.4.0\nname: demo\n"


def refused(files: dict[str, str], root: str | None = None) -> DefinitionError:
    with pytest.raises(DefinitionError) as raised:
        load_pipeline(files, root=root)
    return raised.value


def one_operator(body: str, head: str = HEAD) -> dict[str, str]:
    return {"p.yml": head + "operators:\n- name: op\n  container: {image: tools/op}\n" + body}


@pytest.mark.parametrize(
    ("files", "root", "fragment"),
    [
        ({}, None, "no definition files were sent"),
        ({"a.yml": "x: 1"}, "b.yml", "the root file 'b.yml' was not sent"),
        ({"p.yml": "   \n# only a comment\n"}, None, "the file is empty"),
        ({"p.yml": "just text"}, None, "not the text 'just text'"),
        ({"p.yml": "a: 1\n---\nb: 2\n"}, None, "found a second"),
        ({"p.yml": "\x89PNG\r\n\x1a\n\x00\x00"}, None, "character #x0089 is not allowed"),
        ({"p.yml": HEAD + "operators: []\n"}, None, "`operators` is empty"),
        ({"p.yml": HEAD}, None, "the pipeline is missing `operators`"),
        ({"p.yml": HEAD + "operators: {name: a}\n"}, None, "`operators` must be a list"),
        ({"p.yml": HEAD + "operators: [a]\n"}, None, "operator #1 must be a mapping"),
        ({"p.yml": HEAD + "operators:\n- import: {path: /abs/op.yml}\n"}, None, "not rooted"),
        ({"p.yml": HEAD + "operators:\n- import: [x]\n"}, None, "`import` takes a path"),
        (
            {
                "p.yml": HEAD + "operators:\n- import: pipeline.yml\n",
                "PIPELINE.YML": "operators: []",
            },
            "p.yml",
            "imports 'PIPELINE.YML', a pipeline",
        ),
    ],
)
def test_requests_that_cannot_be_loaded(
    files: dict[str, str], root: str | None, fragment: str
) -> None:
    error = refused(files, root)

    assert any(fragment in message for message in error.messages), error.messages
    assert all(d.line >= 1 and d.column >= 1 for d in error.diagnostics)


def test_oversized_definitions_are_refused_before_parsing() -> None:
    filler = "# " + "x" * 1000 + "\n"
    big = HEAD + filler * (MAX_DEFINITION_BYTES // len(filler) + 1)
    half = HEAD + filler * (MAX_DEFINITION_BYTES // len(filler) // 2 + 1)

    alone = refused({"p.yml": big})
    together = refused({"p.yml": half, "ops/a.yml": half})

    assert "larger than 1048576 bytes" in alone.messages[0]
    assert together.diagnostics[0].file == "ops/a.yml"
    assert alone.code == ErrorCode.PIPELINE_LOAD_ERROR


def test_too_many_operators() -> None:
    operator = "- {name: op, container: {image: x}}\n"

    error = refused({"p.yml": HEAD + "operators:\n" + operator * (MAX_OPERATORS + 1)})

    assert f"at most {MAX_OPERATORS} are allowed" in error.messages[0]


def test_a_dag_too_wide_to_describe_is_refused() -> None:
    layers = ["- {name: l0, container: {image: x}, output: [{path: /o}]}"]
    for level in range(1, 18):
        for side in "ab":
            layers.append(
                f"- {{name: l{level}{side}, container: {{image: x}}, output: [{{path: /o}}], "
                f"input: [{{from: {_previous(level, 'a')}, path: /a}}, "
                f"{{from: {_previous(level, 'b')}, path: /b}}]}}"
            )

    error = refused({"p.yml": HEAD + "operators:\n" + "\n".join(layers) + "\n"})

    assert "the DAG expands to more than 100000 nodes" in error.messages[0]


def _previous(level: int, side: str) -> str:
    return "l0" if level == 1 else f"l{level - 1}{side}"


def test_a_template_bomb_is_refused() -> None:
    value = "x" * 100_000
    placeholders = "${{ big }}" * 100
    files = {
        "p.yml": HEAD + "operators:\n- import: op.yml\n",
        "op.yml": f"name: op\nparameters: {{big: {value}}}\ncontainer: {{image: x}}\n"
        f"variables:\n" + "".join(f"  V{i}: '{placeholders}'\n" for i in range(10)),
    }

    error = refused(files)

    assert "adds more than 8388608 characters" in error.messages[0]
    assert error.code == ErrorCode.PIPELINE_LOAD_ERROR


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("  requests: {cpu: !!int ''}\n", "must be a whole number"),
        ("  requests: {cpu: !!int '9" + "9" * 5000 + "'}\n", "is too large"),
        ('  input: [{path: "/in\\nput"}]\n', "must not contain control characters"),
        ('  output: [{name: "out\\n", path: /o}]\n', "contains '\\n'"),
        ("  timeout: .inf\n", "must be a whole number, not the number '.inf'"),
    ],
)
def test_odd_scalars_are_refused_cleanly(body: str, fragment: str) -> None:
    error = refused(one_operator(body))

    assert any(fragment in message for message in error.messages), error.messages
