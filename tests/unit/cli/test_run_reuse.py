"""`aorta run -p file.yml` reuses a registered pipeline only when its definition is the same."""

from __future__ import annotations

from aorta.cli.definitions import DefinitionFile
from aorta.cli.run import same_definition

FILES = [
    DefinitionFile("pipeline.yml", "name: p\noperators:\n- import: ops/a.yml\n"),
    DefinitionFile("ops/a.yml", "name: a\n"),
]


def _registered(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"path": path, "content": content} for path, content in pairs]


def test_the_same_paths_and_contents_are_the_same_definition_whatever_the_order() -> None:
    registered = _registered(("ops/a.yml", "name: a\n"), ("Pipeline.yml", FILES[0].text))
    assert same_definition(FILES, registered)


def test_a_changed_byte_a_missing_or_an_extra_file_is_another_definition() -> None:
    root = ("pipeline.yml", FILES[0].text)
    assert not same_definition(FILES, _registered(root, ("ops/a.yml", "name: a \n")))
    assert not same_definition(FILES, _registered(root))
    assert not same_definition(
        FILES, _registered(root, ("ops/a.yml", "name: a\n"), ("ops/b.yml", ""))
    )
