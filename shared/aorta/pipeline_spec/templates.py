"""Template placeholders: `${{ name }}` in any text value, filled from declared parameters.

A placeholder is `${{`, optional spaces, a parameter name (the name rules: letters, digits,
`-`, `_`), optional spaces, `}}`. Names match case-insensitively, like every CPDL name.
Substitution is a single pass: text that a value brings in is never scanned again, so a value
may itself contain `${{ x }}` literally. There is no escape: `$${{ x }}` is a `$` followed by
a placeholder. Text that opens `${{` without forming a placeholder is left alone (and warned
about by the loader).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from aorta.pipeline_spec.yaml_nodes import (
    MAX_EXPANDED_CHARS,
    STR,
    Map,
    Node,
    Scalar,
    Seq,
    make_map,
    make_seq,
)

PLACEHOLDER = re.compile(r"\$\{\{\s*([A-Za-z0-9_-]{1,255})\s*\}\}")
OPENING = "${{"


def has_placeholder(text: str) -> bool:
    """Whether `text` holds at least one well-formed placeholder."""
    return OPENING in text and PLACEHOLDER.search(text) is not None


def placeholder_names(text: str) -> list[str]:
    """The parameter names `text` refers to, as written, in order."""
    if OPENING not in text:
        return []
    return [match.group(1) for match in PLACEHOLDER.finditer(text)]


def has_stray_opening(text: str) -> bool:
    """Whether `text` opens `${{` somewhere that is not a well-formed placeholder."""
    return text.count(OPENING) > len(placeholder_names(text))


class ExpansionTooLarge(Exception):
    """Substituting would add more text than a `Budget` allows."""


class Budget:
    """How much text substitution may still add to one definition (a template bomb guard)."""

    def __init__(self, chars: int = MAX_EXPANDED_CHARS) -> None:
        self.remaining = chars

    def spend(self, chars: int) -> None:
        """Takes `chars` from the budget; `ExpansionTooLarge` when it runs out."""
        self.remaining -= max(0, chars)
        if self.remaining < 0:
            raise ExpansionTooLarge(
                f"substituting parameters adds more than {MAX_EXPANDED_CHARS} "
                "characters to the definition"
            )


def substitute_text(text: str, values: Mapping[str, str], budget: Budget) -> str:
    """`text` with each placeholder whose lower-cased name is in `values` replaced.

    The growth is taken from `budget` before any text is built.
    """
    if OPENING not in text:
        return text
    budget.spend(
        sum(
            len(values[match.group(1).lower()]) - len(match.group(0))
            for match in PLACEHOLDER.finditer(text)
            if match.group(1).lower() in values
        )
    )

    def replace(match: re.Match[str]) -> str:
        return values.get(match.group(1).lower(), match.group(0))

    return PLACEHOLDER.sub(replace, text)


def substitute(node: Node, values: Mapping[str, str], budget: Budget) -> Node:
    """A copy of `node` with placeholders filled from `values` (keys lower-cased names).

    Keys are never substituted. Aliased subtrees are substituted once and stay shared.
    Raises `ExpansionTooLarge` when the added text exceeds `budget`.
    """
    memo: dict[int, Node] = {}

    def walk(item: Node) -> Node:
        done = memo.get(id(item))
        if done is not None:
            return done
        result: Node
        if isinstance(item, Scalar):
            result = _substituted_scalar(item, values, budget)
        elif isinstance(item, Seq):
            result = make_seq(tuple(walk(child) for child in item.items), item.mark)
        else:
            result = make_map(tuple((key, walk(value)) for key, value in item.entries), item.mark)
        memo[id(item)] = result
        return result

    return walk(node)


def substitute_map(node: Map, values: Mapping[str, str], budget: Budget, *, skip: str) -> Map:
    """`substitute` over a mapping, leaving the value of its key `skip` as it is.

    `skip` is the `parameters` declaration that supplied the values: defaults are not filled
    into themselves.
    """
    entries = tuple(
        (key, value if key.value == skip else substitute(value, values, budget))
        for key, value in node.entries
    )
    return make_map(entries, node.mark)


def scalars(node: Node, *, skip: str | None = None) -> list[Scalar]:
    """Every text scalar beneath `node` (keys excluded) that mentions `${{`.

    `skip` as in `substitute`. Aliased subtrees are visited once.
    """
    found: list[Scalar] = []
    seen: set[int] = set()
    pending: list[Node] = [node]
    if isinstance(node, Map) and skip is not None:
        pending = [value for key, value in node.entries if key.value != skip]
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, Scalar):
            if OPENING in item.value:
                found.append(item)
        elif isinstance(item, Seq):
            pending.extend(item.items)
        else:
            pending.extend(value for _, value in item.entries)
    found.sort(key=lambda scalar: (scalar.mark.line, scalar.mark.column))
    return found


def _substituted_scalar(scalar: Scalar, values: Mapping[str, str], budget: Budget) -> Scalar:
    text = substitute_text(scalar.value, values, budget)
    if text == scalar.value:
        return scalar
    # Substituted text is text: a placeholder standing for `4` in `cpu:` reads as the text "4",
    # which the number readers accept (see fields.py).
    return Scalar(text, STR, scalar.mark, scalar.template or scalar.value)
