"""Whatever it is fed, load_pipeline returns a pipeline or raises DefinitionError, and every
diagnostic points into a file that was sent."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aorta.pipeline_spec import (
    DefinitionError,
    Diagnostic,
    LoadedPipeline,
    load_pipeline,
    resolve_parameters,
)
from aorta.pipeline_spec.sources import NO_FILE

CORPUS = Path(__file__).resolve().parents[2] / "pipelines"
DOCUMENTS = sorted(
    p.read_text() for p in CORPUS.rglob("*.yml") if "invalid" not in p.relative_to(CORPUS).parts
)
MULTI = {p.relative_to(CORPUS / "multi-liver").as_posix(): p.read_text()
         for p in sorted((CORPUS / "multi-liver").rglob("*.yml"))}  # fmt: skip
# About 7,600 cases in all; hypothesis spends most on nested structures, so fewer of those.
MANY = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SOME = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(files: dict[str, str], root: str | None = None) -> None:
    """The property: a LoadedPipeline or a DefinitionError, with well-placed diagnostics."""
    try:
        loaded = load_pipeline(files, root=root)
    except DefinitionError as error:
        assert error.diagnostics, "a DefinitionError must say what is wrong"
        assert all(d.severity == "error" for d in error.diagnostics)
        _placed(error.diagnostics + error.warnings, files)
        return
    assert isinstance(loaded, LoadedPipeline)
    _placed(loaded.warnings, files)
    pipeline = loaded.pipeline
    names = {op.name for op in pipeline.operators}
    assert set(pipeline.topological_order()) == names
    for operator in pipeline.operators:
        assert set(operator.input_dependencies) <= names - {operator.name}
    try:
        resolved = resolve_parameters(pipeline, {})
    except DefinitionError as error:
        _placed(error.diagnostics, files)
    else:
        assert resolved.placeholders == frozenset()


def _placed(diagnostics: tuple[Diagnostic, ...], files: dict[str, str]) -> None:
    for diagnostic in diagnostics:
        assert diagnostic.file in files or diagnostic.file == NO_FILE, diagnostic
        assert diagnostic.line >= 1 and diagnostic.column >= 1, diagnostic
        assert diagnostic.message


@MANY
@given(st.text(max_size=300))
def test_any_text(text: str) -> None:
    check({"p.yml": text})


@MANY
@given(st.binary(max_size=300), st.sampled_from(["utf-8", "latin-1", "utf-16"]))
def test_any_bytes_decoded(data: bytes, encoding: str) -> None:
    check({"p.yml": data.decode(encoding, errors="replace")})


KEYS = st.sampled_from(
    ["api-version", "name", "operators", "container", "image", "input", "output", "from",
     "path", "requests", "gpu", "services", "import", "args", "parameters", "type", "shape",
     "models", "variables", "timeout", "connections", "http", "<<"]
) | st.text(max_size=8)  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True)
    | st.sampled_from(["0.4.0", "0.6.0", "/input", "a", "${{ A }}", "op", "array", "stream"])
    | st.text(max_size=12)
)
STRUCTURES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=20,
)


@SOME
@given(STRUCTURES)
def test_any_yaml_structure(document: object) -> None:
    check({"p.yml": yaml.safe_dump(document, allow_unicode=True)})


@FEW
@given(st.lists(st.tuples(st.sampled_from(["name", "from", "path", "type"]), SCALARS), max_size=6))
def test_pipeline_shaped_structures(tweaks: list[tuple[str, object]]) -> None:
    document: dict[str, object] = {
        "api-version": "0.6.0",
        "name": "p",
        "parameters": {"A": "1"},
        "operators": [
            {"name": "a", "container": {"image": "x"}, "output": [{"path": "/o"}]},
            {"name": "b", "container": {"image": "x"}, "input": [{"from": "a", "path": "/i"}]},
        ],
    }
    operators = document["operators"]
    assert isinstance(operators, list)
    for index, (key, value) in enumerate(tweaks):
        target = operators[index % 2]
        if key in ("from", "path", "type"):
            target = target.get("input", target.get("output"))[0]
        target[key] = value
    check({"p.yml": yaml.safe_dump(document, allow_unicode=True)})


MUTATIONS = st.sampled_from(["delete", "duplicate", "swap", "indent", "dedent", "value", "insert"])


def mutate(text: str, data: st.DataObject) -> str:
    lines = text.splitlines()
    for _ in range(data.draw(st.integers(1, 4))):
        if not lines:
            break
        kind = data.draw(MUTATIONS)
        at = data.draw(st.integers(0, len(lines) - 1))
        line = lines[at]
        if kind == "delete":
            del lines[at]
        elif kind == "duplicate":
            lines.insert(at, line)
        elif kind == "swap":
            other = data.draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], line
        elif kind == "indent":
            lines[at] = data.draw(st.sampled_from([" ", "  ", "\t", "    "])) + line
        elif kind == "dedent":
            lines[at] = line[data.draw(st.integers(1, 4)) :]
        elif kind == "value" and ":" in line:
            scalar = yaml.safe_dump(data.draw(SCALARS), default_flow_style=True)
            lines[at] = line.split(":", 1)[0] + ": " + scalar.split("\n...")[0].strip()
        else:
            lines[at] = line[:2] + data.draw(st.text(max_size=6)) + line[2:]
    return "\n".join(lines) + "\n"


@MANY
@given(st.sampled_from(DOCUMENTS), st.data())
def test_mutated_corpus_documents(text: str, data: st.DataObject) -> None:
    check({"p.yml": mutate(text, data)})


@FEW
@given(st.sampled_from(sorted(MULTI)), st.data())
def test_mutated_multi_file_definitions(path: str, data: st.DataObject) -> None:
    files = dict(MULTI)
    files[path] = mutate(files[path], data)
    check(files, root="pipeline.yml")
