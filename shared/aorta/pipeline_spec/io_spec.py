"""Operator `input` and `output` lists, untyped (0.3.0/0.4.0) and typed (0.5.0+).

The typed kinds and the keys each needs (docs/clara-compatibility.md, "Typed inputs and
outputs"):

| type            | storage       | element-type        | shape    | path     |
|-----------------|---------------|---------------------|----------|----------|
| (none)          | disk volume   | not allowed         | not allowed | required |
| stream          | disk volume   | required, free text | not allowed | required |
| array           | shared memory | required, primitive | required | not allowed |
| string          | shared memory | not allowed         | not allowed | not allowed |
| primitive (u8…) | shared memory | not allowed         | not allowed | not allowed |

Types are stored in their long spelling (`u8` is `uint8`). A `shape` lists sizes >= 1, or -1
for a dynamic size. Typed keys in a 0.3.0/0.4.0 document are read (with a warning), as are
`models` before 0.6.0: a definition that says more than its version allows still means it.
"""

from __future__ import annotations

from dataclasses import dataclass

from aorta.pipeline_spec.diagnostics import DEFINITION, Mark
from aorta.pipeline_spec.fields import Reader
from aorta.pipeline_spec.model import InputSpec, OutputSpec
from aorta.pipeline_spec.templates import has_placeholder
from aorta.pipeline_spec.vocabulary import INPUT, OUTPUT, Place
from aorta.pipeline_spec.yaml_nodes import Map, Node, Scalar, shown

_SHORT = ("u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "f16", "f32", "f64")
_LONG = (
    "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
    "float16", "float32", "float64",
)  # fmt: skip
PRIMITIVES: dict[str, str] = {**dict(zip(_SHORT, _LONG, strict=True)), **{n: n for n in _LONG}}
"""Every primitive spelling -> its long form."""
TYPED_FROM = (0, 5, 0)


@dataclass(frozen=True)
class IoMarks:
    """Where an input or output and its parts were written, for later diagnostics."""

    item: Mark
    from_: Mark | None = None
    name: Mark | None = None
    path: Mark | None = None


@dataclass(frozen=True)
class _Typed:
    type: str | None = None
    element_type: str | None = None
    shape: tuple[int, ...] | None = None
    # False when `type` names no type or a typed key is misspelt (its path rules are unknown too)
    known: bool = True


class IoReader:
    """Reads the inputs and outputs of one operator."""

    def __init__(self, reader: Reader, owner: str, grammar: tuple[int, int, int]) -> None:
        self._reader = reader
        self._owner = owner
        self._grammar = grammar

    def inputs(self, node: Node) -> list[tuple[InputSpec, IoMarks]]:
        """Every readable item of an `input` list."""
        found = []
        for index, item in enumerate(self._items(node, "input")):
            what = f"input #{index + 1} of {self._owner}"
            self._reader.keys(item, INPUT, what)
            source = self._optional_name(item, "from", what)
            output = self._optional_name(item, "name", what)
            if output is not None and source is None:
                self._reader.report.error(
                    item.mark,
                    f"{what} has `name` but no `from`: `name` picks an output of the "
                    "`from` operator",
                )
            typed = self._typed(item, what, INPUT)
            path = self._path(item, what, typed, INPUT)
            spec = InputSpec(path, source, output, typed.type, typed.element_type, typed.shape)
            found.append((spec, _marks(item)))
        return found

    def outputs(self, node: Node) -> list[tuple[OutputSpec, IoMarks]]:
        """Every readable item of an `output` list."""
        found = []
        for index, item in enumerate(self._items(node, "output")):
            what = f"output #{index + 1} of {self._owner}"
            self._reader.keys(item, OUTPUT, what)
            name = self._optional_name(item, "name", what)
            typed = self._typed(item, what, OUTPUT)
            path = self._path(item, what, typed, OUTPUT)
            spec = OutputSpec(name, path, typed.type, typed.element_type, typed.shape)
            found.append((spec, _marks(item)))
        return found

    def _items(self, node: Node, key: str) -> list[Map]:
        listed = self._reader.sequence(node, f"`{key}` of {self._owner}")
        if listed is None:
            return []
        maps = (
            self._reader.mapping(item, f"an item of `{key}` of {self._owner}")
            for item in listed.items
        )
        return [item for item in maps if item is not None]

    def _optional_name(self, item: Map, key: str, what: str) -> str | None:
        node = item.get(key)
        if node is None:
            return None
        return self._reader.name(node, f"`{key}` of {what}")

    def _path(self, item: Map, what: str, typed: _Typed, place: Place) -> str | None:
        node = item.get("path")
        kind = typed.type
        on_disk = kind in (None, "stream")
        if not typed.known:
            return None
        if node is None:
            if on_disk and not self._reader.misspelt(item, "path", place, what):
                self._reader.report.error(item.mark, f"{what} is missing `path`")
            return None
        if not on_disk:
            self._reader.report.error(
                node.mark, f"{what}: `path` is not allowed for type {kind} (shared memory)"
            )
            return None
        return self._reader.path(node, what)

    def _typed(self, item: Map, what: str, place: Place) -> _Typed:
        type_node = item.get("type")
        element_node = item.get("element-type")
        shape_node = item.get("shape")
        if type_node is None and self._reader.misspelt(item, "type", place, what):
            return _Typed(known=False)
        if type_node is None:
            for node, key in ((element_node, "element-type"), (shape_node, "shape")):
                if node is not None:
                    self._reader.report.error(node.mark, f"{what}: `{key}` needs a `type`")
            return _Typed()
        if self._grammar < TYPED_FROM:
            self._reader.report.warning(
                type_node.mark, f"{what}: typed inputs and outputs need api-version 0.5.0 or later"
            )
        kind = self._kind(type_node, f"the type of {what}")
        if kind is None:
            return _Typed(known=False)
        if element_node is None and self._reader.misspelt(item, "element-type", place, what):
            return _Typed(kind, known=False)
        if shape_node is None and self._reader.misspelt(item, "shape", place, what):
            return _Typed(kind, known=False)
        element = self._element(element_node, kind, what, item.mark)
        shape = self._shape(shape_node, kind, what, item.mark)
        return _Typed(kind, element, shape)

    def _kind(self, node: Node, what: str) -> str | None:
        value = self._fixed_text(node, what)
        if value is None:
            return None
        lowered = value.lower()
        if lowered in ("stream", "array", "string"):
            return lowered
        if lowered in PRIMITIVES:
            return PRIMITIVES[lowered]
        self._reader.report.error(
            node.mark,
            f"{what} {shown(value)} is not a type: use stream, array, string or a primitive "
            f"({', '.join(_SHORT)} or their long forms such as uint8, float32)",
            DEFINITION,
        )
        return None

    def _element(self, node: Node | None, kind: str, what: str, at: Mark) -> str | None:
        if kind not in ("stream", "array"):
            if node is not None:
                self._reader.report.error(
                    node.mark, f"{what}: `element-type` is not allowed for type {kind}"
                )
            return None
        if node is None:
            self._reader.report.error(at, f"{what} of type {kind} is missing `element-type`")
            return None
        value = self._fixed_text(node, f"the element-type of {what}")
        if value is None or kind == "stream":
            return value
        if value.lower() not in PRIMITIVES:
            self._reader.report.error(
                node.mark,
                f"the element-type of {what} {shown(value)} is not a primitive type "
                f"({', '.join(_SHORT)} or their long forms)",
                DEFINITION,
            )
            return None
        return PRIMITIVES[value.lower()]

    def _shape(self, node: Node | None, kind: str, what: str, at: Mark) -> tuple[int, ...] | None:
        if kind != "array":
            if node is not None:
                self._reader.report.error(node.mark, f"{what}: `shape` is only for type array")
            return None
        if node is None:
            self._reader.report.error(at, f"{what} of type array is missing `shape`")
            return None
        listed = self._reader.sequence(node, f"the shape of {what}")
        if listed is None:
            return None
        if not listed.items:
            self._reader.report.error(node.mark, f"the shape of {what} is empty", DEFINITION)
            return None
        sizes = []
        for item in listed.items:
            size = self._size(item, f"a size in the shape of {what}")
            if size is None:
                return None
            sizes.append(size)
        return tuple(sizes)

    def _size(self, node: Node, what: str) -> int | None:
        if isinstance(node, Scalar) and has_placeholder(node.value):
            self._reader.report.error(node.mark, f"{what} cannot use a placeholder", DEFINITION)
            return None
        size = self._reader.integer(node, what, low=-1)
        if size == 0:
            self._reader.report.error(
                node.mark, f"{what} must be -1 (dynamic) or at least 1", DEFINITION
            )
            return None
        return size if isinstance(size, int) else None

    def _fixed_text(self, node: Node, what: str) -> str | None:
        value = self._reader.text(node, what)
        if value is not None and has_placeholder(value):
            self._reader.report.error(
                node.mark,
                f"{what} cannot use a placeholder: types are checked when the pipeline is created",
                DEFINITION,
            )
            return None
        return value


def _marks(item: Map) -> IoMarks:
    def at(key: str) -> Mark | None:
        node = item.get(key)
        return node.mark if node is not None else None

    return IoMarks(item.mark, at("from"), at("name"), at("path"))
