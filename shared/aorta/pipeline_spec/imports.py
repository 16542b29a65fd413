"""`import` items: operators and services kept in other files.

Clara's rules are summarised in docs/clara-compatibility.md, "Imports".

An item of `operators` (or of an operator's `services`) that has an `import` key is replaced
by the definition in the file it names. Both spellings are read:

    - import: {path: ops/reader.yml, args: {TAG: "0.8.1"}}      # Clara's object form
      name: my-reader                                           # overrides, see below
    - import: ops/reader.yml                                    # shorthand: path only,
      args: {TAG: "0.8.1"}                                      # args beside it

`path` is relative to the file the import is written in, never rooted. The imported file is
one operator (or service) document. `args` fill its template `parameters`; an arg it does not
declare is refused, as Clara refused undeclared arguments. Services are not templates: args
given to a service import are ignored with a warning. Keys written beside `import` replace the
imported values whole (no deep merge); `parameters` cannot be replaced that way (use `args`).

This module also applies each operator's own template scope: placeholders naming one of the
operator's `parameters` are filled now (from args, else the default), so what is left for
`Jobs.Start` are the pipeline's parameters only. A parameter of the operator shadows a
pipeline parameter of the same name. Services inside an operator share its scope.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from aorta.pipeline_spec.diagnostics import DEFINITION, Report
from aorta.pipeline_spec.fields import Reader, name_problem
from aorta.pipeline_spec.parts import present
from aorta.pipeline_spec.sources import FileSet, normalize
from aorta.pipeline_spec.templates import (
    Budget,
    ExpansionTooLarge,
    placeholder_names,
    scalars,
    substitute_map,
)
from aorta.pipeline_spec.vocabulary import IMPORT
from aorta.pipeline_spec.yaml_nodes import Map, Node, Scalar, Seq, make_map, make_seq, shown


@dataclass(frozen=True)
class _Imported:
    """An imported document with what the import item says about it."""

    document: Map
    path: str
    args: Map | None
    overrides: Map


class Importer:
    """Expands the imports of one definition, composing each file at most once."""

    def __init__(self, files: FileSet, reader: Reader) -> None:
        self._files = files
        self._reader = reader
        self._report: Report = reader.report
        self._budget = Budget()

    def operators(self, items: tuple[Node, ...], root_file: str) -> list[Map]:
        """The operator mappings of `items`, imports expanded and operator scopes applied.

        Items that cannot be expanded are reported and left out.
        """
        chain = [root_file]
        expanded = (self._operator(item, index, chain) for index, item in enumerate(items))
        return [operator for operator in expanded if operator is not None]

    def _operator(self, item: Node, index: int, chain: list[str]) -> Map | None:
        where = f"operator #{index + 1}"
        operator = self._reader.mapping(item, where)
        if operator is None:
            return None
        if operator.get("import") is None:
            name = operator.get("name")
            if isinstance(name, Scalar) and not name.is_null:
                where = f"operator {name.value!r}"
            return self._scope(self._services(operator, chain), None, where)
        loaded = self._load(operator, chain, "operator")
        if loaded is None:
            return None
        origin = repr(loaded.path)
        body = self._services(loaded.document, [*chain, loaded.path])
        body = self._scope(body, loaded.args, origin)
        replaced = loaded.overrides.key("parameters")
        if replaced is not None:
            self._report.error(
                replaced.mark, "an import cannot replace `parameters`; give values in `args`"
            )
        return _overridden(body, self._services(loaded.overrides, chain))

    def _services(self, operator: Map, chain: list[str]) -> Map:
        services = operator.get("services")
        if not isinstance(services, Seq):
            return operator
        expanded: list[Node] = []
        for item in services.items:
            if not (isinstance(item, Map) and item.get("import") is not None):
                expanded.append(item)
                continue
            loaded = self._load(item, chain, "service")
            if loaded is None:
                continue
            if loaded.args is not None:
                self._report.warning(
                    loaded.args.mark,
                    "services are not templates: the `args` of a service import are ignored",
                )
            expanded.append(_overridden(loaded.document, loaded.overrides))
        return operator.replace("services", make_seq(tuple(expanded), services.mark))

    def _load(self, item: Map, chain: list[str], kind: str) -> _Imported | None:
        """The document `item` imports, or None after reporting why it cannot be had."""
        target = self._target(item)
        if target is None:
            return None
        path_node, args = target
        importer = path_node.mark.file
        path = posixpath.join(posixpath.dirname(importer.replace("\\", "/")), path_node.value)
        key = normalize(path)
        source = self._files.find(path)
        shown_chain = " -> ".join([*chain, source.path if source is not None else path])
        if key in {normalize(step) for step in chain}:
            self._report.error(path_node.mark, f"import cycle: {shown_chain}")
            return None
        if source is None:
            sent = ", ".join(repr(p) for p in self._files.paths())
            self._report.error(
                path_node.mark,
                f"imports {shown(path_node.value)} ({path!r} from {importer!r}), which was not "
                f"sent with the definition (files sent: {sent}; import chain: {shown_chain})",
            )
            return None
        document = self._files.document(source)
        if document is None:
            return None
        if not isinstance(document, Map):
            self._report.error(
                document.mark, f"an imported {kind} must be a mapping (imported as {shown_chain})"
            )
            return None
        if document.get("operators") is not None:
            self._report.error(
                path_node.mark,
                f"imports {source.path!r}, a pipeline; only {kind} definitions can be "
                "imported here",
            )
            return None
        skipped = ("import", "args")
        overrides = make_map(
            tuple((k, v) for k, v in item.entries if k.value not in skipped), item.mark
        )
        return _Imported(document, source.path, args, overrides)

    def _target(self, item: Map) -> tuple[Scalar, Map | None] | None:
        spec = item.get("import")
        args_node: Node | None
        if isinstance(spec, Map):
            beside = item.key("args")
            if beside is not None:
                self._report.error(
                    beside.mark, "`args` goes inside `import` when `import` is a mapping"
                )
            self._reader.keys(spec, IMPORT, "`import`")
            path_node = self._reader.require(spec, "path", "`import`", IMPORT)
            args_node = spec.get("args")
        elif isinstance(spec, Scalar):
            path_node, args_node = spec, item.get("args")
        else:
            if spec is not None:
                self._report.error(spec.mark, "`import` takes a path, or a mapping with `path`")
            return None
        if path_node is None:
            return None
        path = self._reader.text(path_node, "the `import` path")
        if path is None or not isinstance(path_node, Scalar):
            return None
        if path.startswith(("/", "\\")):
            self._report.error(
                path_node.mark,
                f"the import path {shown(path)} must be relative to the importing file, not rooted",
            )
            return None
        args = self._reader.mapping(args_node, "`args`") if args_node is not None else None
        return path_node, args

    def _scope(self, operator: Map, args: Map | None, origin: str) -> Map:
        declared_node = present(operator.get("parameters"))
        declared = (
            self._reader.parameters(declared_node, f"`parameters` of {origin}")
            if declared_node is not None
            else {}
        )
        spelled = {name.lower(): name for name in declared}
        given: dict[str, str] = {}
        if args is not None:
            values = self._reader.text_map(args, "`args`", key_problem=name_problem) or {}
            for name, value in values.items():
                if name.lower() not in spelled:
                    offered = ", ".join(declared) or "none"
                    self._report.error(
                        args.mark,
                        f"`args` gives {name!r}, which is not a parameter of {origin} "
                        f"(its parameters: {offered})",
                        DEFINITION,
                    )
                    continue
                given[name.lower()] = value
        filled: dict[str, str] = {}
        for lower, name in spelled.items():
            chosen = given.get(lower, declared[name])
            if chosen is not None:
                filled[lower] = chosen
        self._report_unfilled(operator, set(spelled) - set(filled), origin, args is not None)
        if not filled:
            return operator
        try:
            return substitute_map(operator, filled, self._budget, skip="parameters")
        except ExpansionTooLarge as exc:
            self._report.error(operator.mark, str(exc))
            return operator

    def _report_unfilled(
        self, operator: Map, unfilled: set[str], origin: str, imported: bool
    ) -> None:
        if not unfilled:
            return
        missing = "and the import gives no arg for it" if imported else "to use"
        for scalar in scalars(operator, skip="parameters"):
            for name in placeholder_names(scalar.value):
                if name.lower() in unfilled:
                    self._report.error(
                        scalar.mark,
                        f"${{{{ {name} }}}} has no value: parameter {name!r} of {origin} has no "
                        f"default {missing}",
                        DEFINITION,
                    )


def _overridden(document: Map, overrides: Map) -> Map:
    """`document` with each key of `overrides` replacing its value whole (or added)."""
    replaced = {key.value: (key, value) for key, value in overrides.entries}
    entries = [replaced.pop(key.value, (key, value)) for key, value in document.entries]
    entries.extend(replaced.values())
    return make_map(tuple(entries), overrides.mark)
