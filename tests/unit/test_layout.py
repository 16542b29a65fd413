"""The layout keeps its promises: import rules by package, and an ARCHITECTURE.md that names
every package and service there is (so neither can drift from the code)."""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_ROOTS = ("shared", "services", "compat")
NO_IO_CONTRACT = "domain logic and every module that calls itself pure do no I/O"
PURITY_CLAIM = re.compile(r"\bpure\b|\bno I/O\b", re.IGNORECASE)


def _modules() -> Iterator[tuple[str, Path]]:
    """Every module of the distribution's packages as (import name, path)."""
    for root in PACKAGE_ROOTS:
        for path in sorted((REPO_ROOT / root).rglob("*.py")):
            parts = path.relative_to(REPO_ROOT / root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join(parts), path


def _contract(name: str) -> dict[str, object]:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    found = [c for c in contracts if c["name"] == name]
    assert len(found) == 1, f"no import-linter contract named {name!r}"
    return dict(found[0])


def _covered(module: str, expressions: list[str]) -> bool:
    """Whether `module` is one of `expressions` or inside one (import-linter's wildcards: `*`
    is one name, `**` any number)."""
    for expression in expressions:
        pattern = re.escape(expression).replace(r"\*\*", ".+").replace(r"\*", "[^.]+")
        if re.fullmatch(rf"{pattern}(\..+)?", module):
            return True
    return False


def test_the_wildcard_matching_follows_import_linter() -> None:
    assert _covered("aorta_services.models.domain.placement", ["aorta_services.*.domain"])
    assert _covered("aorta_services.scheduler.domain", ["aorta_services.*.domain"])
    assert not _covered("aorta_services.scheduler.engine", ["aorta_services.*.domain"])
    assert not _covered("aorta.pipeline_specs", ["aorta.pipeline_spec"])


def test_every_module_that_calls_itself_pure_is_held_to_it() -> None:
    sources = _contract(NO_IO_CONTRACT)["source_modules"]
    assert isinstance(sources, list)
    claims = []
    for module, path in _modules():
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        if PURITY_CLAIM.search(docstring):
            claims.append(module)
            assert _covered(module, sources), (
                f"{module} says it is pure (or does no I/O) but the contract {NO_IO_CONTRACT!r} "
                "in pyproject.toml does not check it: add it there, or mend its docstring"
            )
    assert "aorta.pipeline_spec" in claims, "the purity claims were not found at all"


def test_every_service_has_a_domain_held_to_no_io() -> None:
    services = REPO_ROOT / "services" / "aorta_services"
    for folder in sorted(p for p in services.iterdir() if (p / "app.py").is_file()):
        modules = {p.stem for p in folder.iterdir()}
        if "domain" in modules:
            assert _covered(f"aorta_services.{folder.name}.domain", ["aorta_services.*.domain"])


def _layout_section() -> str:
    text = (REPO_ROOT / "ARCHITECTURE.md").read_text()
    match = re.search(r"^## Layout\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert match, "ARCHITECTURE.md has no '## Layout' section"
    return match.group(1)


def _entries(folder: Path) -> list[str]:
    """The packages and modules directly in `folder`, as the layout names them."""
    names = []
    for path in sorted(folder.iterdir()):
        if path.is_dir() and (path / "__init__.py").is_file():
            names.append(f"{path.name}/")
        elif path.suffix == ".py" and path.name != "__init__.py":
            names.append(path.name)
    return names


def test_architecture_names_every_package_service_and_top_level_module() -> None:
    layout = _layout_section()
    folders = [
        REPO_ROOT / "shared" / "aorta",
        REPO_ROOT / "services" / "aorta_services",
        REPO_ROOT / "compat",
    ]
    missing = [
        f"{folder.relative_to(REPO_ROOT)}/{entry}"
        for folder in folders
        for entry in _entries(folder)
        if not re.search(rf"(?<![\w/.]){re.escape(entry)}", layout)
    ]
    assert not missing, f"ARCHITECTURE.md's layout does not describe: {missing}"


def test_the_layout_names_nothing_that_is_gone() -> None:
    tree = re.search(r"^```\n(.*?)^```", _layout_section(), re.MULTILINE | re.DOTALL)
    assert tree, "the layout section has no tree"
    named = set(re.findall(r"(?<![\w./`-])([a-z_]+(?:/|\.py))(?![\w])", tree.group(1)))
    known = set()
    for top in REPO_ROOT.iterdir():
        if top.name.startswith("."):
            continue
        for path in (top, *top.rglob("*")) if top.is_dir() else (top,):
            known.add(f"{path.name}/" if path.is_dir() else path.name)
    stale = sorted(named - known)
    assert not stale, f"ARCHITECTURE.md's layout names what is not in the repository: {stale}"
