"""Multi-file definitions: file lookup, imports, args, overrides and operator parameters."""

from __future__ import annotations

import pytest

from aorta.pipeline_spec import DefinitionError, load_pipeline

HEAD = "api-version: 0.4.0\nname: demo\n"


def refused(files: dict[str, str], root: str | None = None) -> DefinitionError:
    with pytest.raises(DefinitionError) as raised:
        load_pipeline(files, root=root)
    return raised.value


def one_operator(body: str, head: str = HEAD) -> dict[str, str]:
    return {"p.yml": head + "operators:\n- name: op\n  container: {image: tools/op}\n" + body}


def test_paths_of_files_compare_ignoring_case_and_separators() -> None:
    files = {
        "Def\\Pipeline.yml": HEAD + "operators:\n- import: ops/Reader.yml\n",
        "def/OPS/reader.yml": "name: reader\ncontainer: {image: x}\n",
    }

    loaded = load_pipeline(files)

    assert loaded.pipeline.operators[0].name == "reader"


def test_files_sent_twice_under_one_path_are_joined() -> None:
    files = {"p.yml": HEAD, "P.YML": "operators:\n- {name: op, container: {image: x}}\n"}

    assert load_pipeline(files).pipeline.operators[0].name == "op"


def test_errors_in_imported_files_point_into_them() -> None:
    files = {
        "p.yml": HEAD + "operators:\n- import: ops/a.yml\n",
        "ops/a.yml": "name: a\ncontainer:\n  image: x\n  tag: [1]\n",
    }

    (diagnostic,) = refused(files).diagnostics

    assert (diagnostic.file, diagnostic.line, diagnostic.column) == ("ops/a.yml", 4, 8)


def test_service_import_args_are_ignored_with_a_warning() -> None:
    files = {
        "p.yml": HEAD + "operators:\n- name: op\n  container: {image: x}\n  services:\n"
        "  - import: {path: svc.yml, args: {a: b}}\n    name: renamed\n",
        "svc.yml": "name: svc\ncontainer: {image: triton}\n",
    }

    loaded = load_pipeline(files)

    assert loaded.pipeline.operators[0].services[0].name == "renamed"
    assert any("are ignored" in w.message for w in loaded.warnings)


def test_import_cannot_replace_parameters() -> None:
    files = {
        "p.yml": HEAD + "operators:\n- import: op.yml\n  parameters: {a: b}\n",
        "op.yml": "name: op\ncontainer: {image: x}\n",
    }

    assert "give values in `args`" in refused(files).messages[0]


def test_missing_import_argument_without_default() -> None:
    files = {
        "p.yml": HEAD + "operators:\n- import: op.yml\n",
        "op.yml": "name: op\nparameters: {organ: }\ncontainer: {image: 'ai-${{ organ }}'}\n",
    }

    error = refused(files)

    assert "${{ organ }} has no value" in error.messages[0]
    assert error.diagnostics[0].file == "op.yml"


def test_inline_operator_parameters_shadow_pipeline_parameters() -> None:
    files = {
        "p.yml": HEAD + "parameters: {tag: '1.0'}\noperators:\n"
        "- name: a\n  parameters: {tag: '2.0'}\n  container: {image: x, tag: '${{ tag }}'}\n"
        "- name: b\n  container: {image: x, tag: '${{ TAG }}'}\n"
    }

    pipeline = load_pipeline(files).pipeline

    assert [op.container.tag for op in pipeline.operators] == ["2.0", "${{ TAG }}"]
    assert pipeline.placeholders == frozenset({"tag"})


def test_unused_parameters_and_stray_openings_warn() -> None:
    loaded = load_pipeline(
        one_operator("  variables: {A: '${{ not a name }}'}\n", HEAD + "parameters: {X: y}\n")
    )

    messages = [w.message for w in loaded.warnings]
    assert any("parameter 'X' is declared but never used" in m for m in messages)
    assert any("is not a placeholder" in m for m in messages)


def test_files_nothing_imports_are_warned_about() -> None:
    loaded = load_pipeline(one_operator("") | {"notes/README.yml": "a: 1"})

    (warning,) = loaded.warnings
    assert (warning.file, warning.line) == ("notes/README.yml", 1)
    assert "was sent but nothing imports it" in warning.message
