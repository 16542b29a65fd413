"""`create pipeline` sends the definition and every file it imports, paths as the server
resolves them, in 64 KiB chunks that share their file's path."""

from __future__ import annotations

from pathlib import Path

import pytest

from aorta.cli.definitions import (
    DefinitionFile,
    collect_definition,
    create_requests,
    imports_of,
    pipeline_name,
    update_requests,
)
from aorta.cli.failures import UsageFailure


def test_imports_are_found_in_both_spellings_anywhere_in_the_document() -> None:
    text = """
name: p
operators:
- import: ops/a.yml
- import: {path: ops/b.yml, args: {X: "1"}}
- name: c
  services:
  - import: svc/triton.yml
"""
    assert imports_of(text) == ["ops/a.yml", "ops/b.yml", "svc/triton.yml"]


def test_a_document_that_does_not_parse_has_no_imports() -> None:
    assert imports_of("operators: [unclosed") == []


def test_imports_are_collected_transitively_relative_to_their_importer(tmp_path: Path) -> None:
    (tmp_path / "ops" / "shared").mkdir(parents=True)
    (tmp_path / "def.yml").write_text("operators:\n- import: ops/a.yml\n- import: ops/a.yml\n")
    (tmp_path / "ops" / "a.yml").write_text("name: a\nservices:\n- import: shared/s.yml\n")
    (tmp_path / "ops" / "shared" / "s.yml").write_text("name: s\nservices:\n- import: ../a.yml\n")
    files = collect_definition(tmp_path / "def.yml")
    assert [f.path for f in files] == ["def.yml", "ops/a.yml", "ops/shared/s.yml"]
    assert files[1].text == (tmp_path / "ops" / "a.yml").read_text()


def test_a_rooted_import_is_left_for_the_server_to_refuse(tmp_path: Path) -> None:
    (tmp_path / "def.yml").write_text("operators:\n- import: /etc/op.yml\n")
    assert [f.path for f in collect_definition(tmp_path / "def.yml")] == ["def.yml"]


def test_a_missing_import_is_a_usage_failure_naming_both_files(tmp_path: Path) -> None:
    (tmp_path / "def.yml").write_text("operators:\n- import: ops/none.yml\n")
    with pytest.raises(UsageFailure, match=r"def.yml imports 'ops/none.yml'"):
        collect_definition(tmp_path / "def.yml")


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    (tmp_path / "def.yml").write_bytes(b"name: \xff\n")
    with pytest.raises(UsageFailure, match="not UTF-8"):
        collect_definition(tmp_path / "def.yml")


def test_the_create_stream_chunks_each_file_under_its_own_path() -> None:
    files = [DefinitionFile("def.yml", "a" * 10), DefinitionFile("ops/x.yml", "b" * 3)]
    requests = list(create_requests(files, [("team", "imaging")], chunk_size=4))
    assert [(r.definition.path, r.definition.content) for r in requests] == [
        ("def.yml", "aaaa"),
        ("def.yml", "aaaa"),
        ("def.yml", "aa"),
        ("ops/x.yml", "bbb"),
    ]
    assert requests[0].HasField("header") and dict(requests[0].metadata) == {"team": "imaging"}
    assert not requests[1].HasField("header") and not requests[1].metadata


def test_the_update_stream_names_the_pipeline_in_every_message() -> None:
    files = [DefinitionFile("def.yml", "a" * 5)]
    requests = list(update_requests("cd" * 16, files, chunk_size=4))
    assert [r.pipeline_id.value for r in requests] == ["cd" * 16] * 2
    assert "".join(r.definition.content for r in requests) == "a" * 5


def test_the_pipeline_name_comes_from_the_root_document() -> None:
    assert pipeline_name([DefinitionFile("d.yml", "name: seg\n")]) == "seg"
    assert pipeline_name([DefinitionFile("d.yml", "- not a mapping\n")]) is None
