"""Every broken definition of the corpus fails where its `# expect:` line says, with the code and
message it names; every one with keys the language does not know loads with exactly the
warnings its `# warn:` lines name, where they name them."""

from __future__ import annotations

import re

import pytest

from aorta.errors import ErrorCode
from aorta.pipeline_spec import DefinitionError, load_pipeline
from tests.unit.pipeline_spec.corpus import INVALID, WARNED, read_case

EXPECT = re.compile(r"^# expect: (\w+) (?:(\S+\.yml):)?(\d+)(?::(\d+))? (.+)$", re.MULTILINE)
WARN = re.compile(r"^# warn: (\d+):(\d+) (.+)$", re.MULTILINE)
TYPOS = (
    "typo-operators.yml", "typo-api-version.yml", "typo-operator-container.yml",
    "typo-container-command.yml", "input-under-container.yml", "command-beside-container.yml",
    "typo-command-beside-container.yml",
    "typo-input.yml", "typo-output.yml", "typo-requests.yml", "typo-models.yml",
    "typo-service.yml", "typo-connections.yml", "typo-http-connection.yml",
    "typo-volume-connection.yml", "typo-import", "misspelt-key.yml",
)  # fmt: skip
"""One typo or misplaced key per mapping of the language (the issue's cases among them)."""


def _invalid_cases() -> list[str]:
    return sorted(p.name for p in INVALID.iterdir())


def test_the_invalid_corpus_covers_the_required_failures() -> None:
    required = {
        "cycle.yml", "dangling-from.yml", "dangling-name.yml", "duplicate-operator-names.yml",
        "duplicate-output-names.yml", "missing-input-name.yml", "relative-path.yml",
        "bad-name-chars.yml", "name-too-long.yml", "negative-requests.yml",
        "unknown-version.yml", "malformed-yaml.yml", "non-mapping-root.yml",
        "duplicate-keys.yml", "import-cycle", "missing-import", "deep-nesting.yml",
        "alias-bomb.yml", *TYPOS,
    }  # fmt: skip
    assert required <= set(_invalid_cases())


@pytest.mark.parametrize("case", _invalid_cases())
@pytest.mark.usefixtures("parser")
def test_invalid_definition_is_refused_where_its_expect_line_says(case: str) -> None:
    files, root = read_case(INVALID, case, None)
    expected = EXPECT.search(files[root])
    assert expected is not None, f"{case} has no '# expect:' line"
    code, file, line, column, fragment = expected.groups()

    with pytest.raises(DefinitionError) as raised:
        load_pipeline(files, root=root)

    assert raised.value.code == ErrorCode[code]
    matching = [d for d in raised.value.diagnostics if fragment in d.message]
    assert matching, raised.value.messages
    assert (matching[0].file, matching[0].line) == (file or root, int(line))
    if column is not None:
        assert matching[0].column == int(column)
    assert any(fragment in message for message in raised.value.messages)


@pytest.mark.parametrize("case", TYPOS)
def test_a_typo_is_the_only_error_even_where_it_leaves_a_required_key_missing(case: str) -> None:
    files, root = read_case(INVALID, case, None)

    with pytest.raises(DefinitionError) as raised:
        load_pipeline(files, root=root)

    (only,) = raised.value.diagnostics
    assert "is missing" not in only.message
    assert "did you mean `" in only.message or " belongs to " in only.message


@pytest.mark.parametrize("case", sorted(p.name for p in WARNED.iterdir()))
@pytest.mark.usefixtures("parser")
def test_far_off_unknown_keys_are_only_warnings_where_the_warn_lines_say(case: str) -> None:
    files, root = read_case(WARNED, case, None)
    expected = WARN.findall(files[root])
    assert expected, f"{case} has no '# warn:' line"

    loaded = load_pipeline(files, root=root)

    found = sorted((w.line, w.column, w.message) for w in loaded.warnings)
    assert len(found) == len(expected), found
    for line, column, fragment in expected:
        assert any(
            (at_line, at_column) == (int(line), int(column)) and fragment in message
            for at_line, at_column, message in found
        ), (line, column, fragment, found)
