"""Safe, bounded YAML composition into small immutable node trees that remember positions.

PyYAML's composer is recursive (a deeply nested document exhausts the Python stack) and hands
back shared nodes for aliases (walking them is the "billion laughs"). So this module drives
PyYAML's event parser (a state machine, no recursion) and composes nodes itself, with limits
checked as it goes: nesting depth, alias count, and the number of values the tree expands to
when aliases are followed. Nothing is ever constructed into Python objects, so no tag can run
code. Merge keys (`<<: *defaults`) are honoured as YAML 1.1 and PyYAML's safe loader do.

The event parser is libyaml's when PyYAML was built with it (about ten times faster, which
matters for a 1 MiB definition), else PyYAML's own; both are iterative. Characters YAML does
not allow are found before either sees the text, so both report them the same way; the wording
of syntax errors differs slightly between the two.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import yaml

from aorta.pipeline_spec.diagnostics import Mark, Report

MAX_DEPTH = 64
"""Deepest nesting of mappings and sequences a document may have."""
MAX_ALIASES = 1000
"""Most `*alias` uses one file may contain."""
MAX_VALUES = 250_000
"""Most values (scalars, sequences, mappings) one file may expand to, aliases followed."""
MAX_EXPANDED_CHARS = 8 * 1024 * 1024
"""Most characters of text one file may expand to, aliases followed (and, separately, the most
that substituting template parameters may add to a definition)."""

STR = "tag:yaml.org,2002:str"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
BOOL = "tag:yaml.org,2002:bool"
NULL = "tag:yaml.org,2002:null"
MERGE = "tag:yaml.org,2002:merge"
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NON_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE

_CORE_TAGS = frozenset(
    "tag:yaml.org,2002:" + name
    for name in ("str", "int", "float", "bool", "null", "merge", "timestamp", "binary", "seq",
                 "map", "omap", "pairs", "set", "value")
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Scalar:
    """A scalar as written (`value` is its text) with the tag YAML resolved for it.

    `template` is the text before placeholders were substituted, so messages about a value
    that came from a parameter can show where it came from.
    """

    value: str
    tag: str
    mark: Mark
    template: str | None = None
    size: int = field(default=1, compare=False)

    @property
    def is_null(self) -> bool:
        return self.tag == NULL

    @property
    def chars(self) -> int:
        return len(self.value)


@dataclass(frozen=True, slots=True)
class Seq:
    """A YAML sequence."""

    items: tuple[Node, ...]
    mark: Mark
    size: int = field(default=1, compare=False)
    chars: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Map:
    """A YAML mapping with scalar keys, in document order, duplicates already refused."""

    entries: tuple[tuple[Scalar, Node], ...]
    mark: Mark
    size: int = field(default=1, compare=False)
    chars: int = field(default=0, compare=False)

    def get(self, key: str) -> Node | None:
        """The value of `key`, or None when absent."""
        for name, value in self.entries:
            if name.value == key:
                return value
        return None

    def key(self, key: str) -> Scalar | None:
        """The key scalar itself (for its position), or None when absent."""
        for name, _ in self.entries:
            if name.value == key:
                return name
        return None

    def replace(self, key: str, value: Node) -> Map:
        """A copy with `key` bound to `value` (appended when absent)."""
        entries = [(k, value if k.value == key else v) for k, v in self.entries]
        if self.get(key) is None:
            entries.append((Scalar(key, STR, value.mark), value))
        return make_map(tuple(entries), self.mark)


Node = Scalar | Seq | Map


def make_seq(items: tuple[Node, ...], mark: Mark) -> Seq:
    """A sequence whose `size` and `chars` count everything beneath it, aliases followed."""
    return Seq(items, mark, 1 + sum(item.size for item in items), sum(item.chars for item in items))


def make_map(entries: tuple[tuple[Scalar, Node], ...], mark: Mark) -> Map:
    """A mapping whose `size` and `chars` count everything beneath it, aliases followed."""
    return Map(
        entries,
        mark,
        1 + sum(1 + value.size for _, value in entries),
        sum(key.chars + value.chars for key, value in entries),
    )


def describe(node: Node) -> str:
    """What a node is, in words for messages ("a list", "the number 3", ...)."""
    if isinstance(node, Map):
        return "a mapping"
    if isinstance(node, Seq):
        return "a list"
    if node.is_null:
        return "nothing (null)"
    kind = {INT: "the number", FLOAT: "the number", BOOL: "the boolean"}.get(node.tag, "the text")
    return f"{kind} {shown(node.value)}"


def shown(text: str, limit: int = 60) -> str:
    """`text` quoted for a message, shortened when long."""
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return repr(text)


class _Position(Protocol):
    """A PyYAML mark, from the Python or the C parser: 0-based line and column."""

    line: int
    column: int


class _Refused(Exception):
    """Stops composition of a document that breaks a hard limit."""

    def __init__(self, mark: Mark, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


@dataclass
class _Frame:
    """A sequence or mapping whose children are still being read."""

    is_map: bool
    mark: Mark
    anchor: str | None
    children: list[Node] = field(default_factory=list)


def compose(text: str, file: str, report: Report) -> Node | None:
    """The single YAML document in `text`, or None after reporting why it cannot be read.

    Errors found while composing (duplicate keys, a bad merge) are reported and composition
    goes on; the caller checks `report.has_errors`. Never raises.
    """
    unprintable = _NON_PRINTABLE.search(text)
    if unprintable is not None:
        report.error(
            _offset_mark(text, file, unprintable.start()),
            f"not valid YAML text: character #x{ord(unprintable.group()):04x} is not allowed; a "
            "definition must be printable UTF-8 text",
        )
        return None
    try:
        return _Composer(text, file, report).run()
    except _Refused as refused:
        report.error(refused.mark, refused.message)
    except yaml.MarkedYAMLError as exc:
        at = _marked_position(exc, file)
        report.error(at, _marked_message(exc) + _tab_hint(text, at))
    except yaml.YAMLError as exc:
        report.error(Mark(file, 1, 1), f"not valid YAML: {exc}")
    return None


class _Composer:
    def __init__(self, text: str, file: str, report: Report) -> None:
        self._text = text
        self._file = file
        self._report = report
        self._anchors: dict[str, Node] = {}
        self._aliases = 0

    def run(self) -> Node | None:
        loader = _LOADER(self._text)
        try:
            _next_event(loader)  # StreamStart
            if loader.check_event(yaml.StreamEndEvent):
                raise _Refused(Mark(self._file, 1, 1), "the file is empty: it holds no YAML value")
            _next_event(loader)  # DocumentStart
            root = self._document(loader)
            _next_event(loader)  # DocumentEnd
            if not loader.check_event(yaml.StreamEndEvent):
                extra = self._mark(_peek_event(loader).start_mark)
                raise _Refused(extra, "a definition file holds one YAML document; found a second")
            return root
        finally:
            loader.dispose()

    def _document(self, loader: yaml.SafeLoader) -> Node:
        stack: list[_Frame] = []
        while True:
            event = _next_event(loader)
            mark = self._mark(event.start_mark)
            node: Node
            if isinstance(event, yaml.AliasEvent):
                node = self._alias(event.anchor or "", mark, stack)
            elif isinstance(event, yaml.ScalarEvent):
                tag = event.tag
                if tag is None or tag == "!":
                    tag = _resolved_tag(loader, event)
                self._check_tag(tag, mark)
                node = Scalar(event.value, tag, mark)
                self._remember(event.anchor, node)
            elif isinstance(event, yaml.CollectionStartEvent):
                if len(stack) >= MAX_DEPTH:
                    raise _Refused(mark, f"the document nests deeper than {MAX_DEPTH} levels")
                if event.tag is not None and event.tag != "!":
                    self._check_tag(event.tag, mark)
                stack.append(_Frame(isinstance(event, yaml.MappingStartEvent), mark, event.anchor))
                continue
            else:  # the end of the innermost collection
                frame = stack.pop()
                children = tuple(frame.children)
                node = self._mapping(frame) if frame.is_map else make_seq(children, frame.mark)
                if node.size > MAX_VALUES or node.chars > MAX_EXPANDED_CHARS:
                    raise _Refused(
                        frame.mark,
                        f"the document expands to more than {MAX_VALUES} values or "
                        f"{MAX_EXPANDED_CHARS} characters once its aliases are followed (an "
                        "alias bomb?)",
                    )
                self._remember(frame.anchor, node)
            if not stack:
                return node
            stack[-1].children.append(node)

    def _alias(self, anchor: str, mark: Mark, stack: list[_Frame]) -> Node:
        self._aliases += 1
        if self._aliases > MAX_ALIASES:
            raise _Refused(mark, f"the document uses more than {MAX_ALIASES} aliases")
        if any(frame.anchor == anchor for frame in stack):
            raise _Refused(mark, f"alias *{anchor} refers to a value that contains it")
        node = self._anchors.get(anchor)
        if node is None:
            raise _Refused(mark, f"alias *{anchor} refers to no anchor &{anchor} defined before it")
        return node

    def _remember(self, anchor: str | None, node: Node) -> None:
        if anchor is not None:
            self._anchors[anchor] = node

    def _check_tag(self, tag: str, mark: Mark) -> None:
        if tag not in _CORE_TAGS:
            self._report.warning(mark, f"YAML tag {tag} is ignored; the value is read as text")

    def _mapping(self, frame: _Frame) -> Map:
        explicit: dict[str, tuple[Scalar, Node]] = {}
        merged: dict[str, tuple[Scalar, Node]] = {}
        children = frame.children
        for key, value in zip(children[::2], children[1::2], strict=True):
            if not isinstance(key, Scalar):
                raise _Refused(
                    key.mark, "a mapping key must be a plain value, not " + describe(key)
                )
            if key.tag == MERGE:
                for source in self._merge_sources(value):
                    for name, item in source.entries:
                        merged.setdefault(name.value, (name, item))
                continue
            first = explicit.get(key.value)
            if first is not None:
                self._report.error(
                    key.mark,
                    f"duplicate key {shown(key.value)} (first given at line {first[0].mark.line})",
                )
                continue
            explicit[key.value] = (key, value)
        entries = list(explicit.values())
        entries.extend(pair for name, pair in merged.items() if name not in explicit)
        return make_map(tuple(entries), frame.mark)

    def _merge_sources(self, value: Node) -> list[Map]:
        sources = value.items if isinstance(value, Seq) else (value,)
        maps = [source for source in sources if isinstance(source, Map)]
        if len(maps) != len(sources):
            self._report.error(value.mark, "a merge key (<<) takes a mapping or a list of mappings")
        return maps

    def _mark(self, mark: _Position | None) -> Mark:
        if mark is None:
            return Mark(self._file, 1, 1)
        return Mark(self._file, mark.line + 1, mark.column + 1)


def _next_event(loader: yaml.SafeLoader) -> yaml.Event:
    # PyYAML's stubs leave the parser's methods untyped.
    event: yaml.Event = loader.get_event()  # type: ignore[no-untyped-call]
    return event


def _peek_event(loader: yaml.SafeLoader) -> yaml.Event:
    event: yaml.Event = loader.peek_event()  # type: ignore[no-untyped-call]
    return event


def _resolved_tag(loader: yaml.SafeLoader, event: yaml.ScalarEvent) -> str:
    tag: str = loader.resolve(yaml.ScalarNode, event.value, event.implicit)  # type: ignore[no-untyped-call]
    return tag


def _marked_position(exc: yaml.MarkedYAMLError, file: str) -> Mark:
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        return Mark(file, 1, 1)
    return Mark(file, mark.line + 1, mark.column + 1)


def _marked_message(exc: yaml.MarkedYAMLError) -> str:
    problem = exc.problem or exc.context or "unexpected content"
    message = f"not valid YAML: {problem}"
    if exc.context and exc.problem and exc.context_mark is not None:
        where = exc.context_mark
        message += f" ({exc.context} at line {where.line + 1}, column {where.column + 1})"
    return message


def _tab_hint(text: str, at: Mark) -> str:
    lines = text.split("\n")
    line = lines[at.line - 1] if at.line <= len(lines) else ""
    indentation = line[: len(line) - len(line.lstrip())]
    if "\t" in indentation or line[at.column - 1 : at.column] == "\t":
        return "; YAML does not allow tabs for indentation, use spaces"
    return ""


def _offset_mark(text: str, file: str, position: int) -> Mark:
    position = max(0, min(position, len(text)))
    line_start = text.rfind("\n", 0, position) + 1
    return Mark(file, text.count("\n", 0, position) + 1, position - line_start + 1)
