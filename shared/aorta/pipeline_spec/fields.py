"""Reading typed values out of YAML nodes, with a diagnostic for anything that does not fit.

Decisions where Clara is silent:

- Text fields accept any scalar and keep its text as written: `tag: 1.0` is the tag "1.0",
  `CLARA_TRACE: 2` the value "2" (Clara's own examples write numbers there).
- Whole-number fields (`requests`, `timeout`, ports) accept YAML integers and quoted decimal
  numbers ("2"): a placeholder such as `${{ CPU }}` becomes text, and "4" from a parameter must
  read like 4 written plainly. Fractions, booleans and other text are refused.
- While loading, a value holding a placeholder is kept as text and checked once the
  `Jobs.Start` variables fill it (`resolve_parameters`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from aorta.pipeline_spec.diagnostics import DEFINITION, MAX_DIAGNOSTICS, Report
from aorta.pipeline_spec.templates import has_placeholder, has_stray_opening
from aorta.pipeline_spec.vocabulary import Place, judge
from aorta.pipeline_spec.yaml_nodes import INT, STR, Map, Node, Scalar, Seq, describe, shown

NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,255}")
MAX_NAME_LENGTH = 255
MAX_INT = 2**31 - 1

_DECIMAL = re.compile(r"^\s*[-+]?[0-9]+\s*$")


def name_problem(value: str) -> str | None:
    """Why `value` breaks the CPDL name rules, or None when it follows them."""
    if NAME_PATTERN.fullmatch(value):
        return None
    if not value:
        return "is empty"
    if len(value) > MAX_NAME_LENGTH:
        return f"is {len(value)} characters long; names have at most {MAX_NAME_LENGTH}"
    bad = sorted({c for c in value if not re.match(r"[A-Za-z0-9_-]", c)})
    return "contains " + ", ".join(repr(c) for c in bad[:5]) + "; use only A-Z, a-z, 0-9, - and _"


def yaml_int(text: str) -> int:
    """The value of a YAML 1.1 integer (`1_000`, `0x1F`, `017`, `1:30`); ValueError if none."""
    digits = text.replace("_", "")
    sign = 1
    if digits.startswith(("-", "+")):
        sign = -1 if digits[0] == "-" else 1
        digits = digits[1:]
    if digits.startswith("0b"):
        return sign * int(digits[2:], 2)
    if digits.startswith("0x"):
        return sign * int(digits[2:], 16)
    if ":" in digits:
        value = 0
        for part in digits.split(":"):
            value = value * 60 + int(part)
        return sign * value
    if len(digits) > 1 and digits.startswith("0"):
        return sign * int(digits, 8)
    return sign * int(digits)


class Reader:
    """Reads values for one load (`templates=True`) or one resolution (`templates=False`)."""

    def __init__(self, report: Report, *, templates: bool) -> None:
        self.report = report
        self.templates = templates
        self._unknown_keys = 0

    def templated(self, node: Scalar) -> bool:
        """Whether `node` is a placeholder-bearing value to check after resolution."""
        return self.templates and has_placeholder(node.value)

    def keys(self, node: Map, place: Place, owner: str, inside: Place | None = None) -> None:
        """Reports the keys of `node` (a mapping of kind `place`, named `owner` in messages)
        that `place` does not know: typos and misplaced keys are errors, anything else a
        warning (vocabulary.py says how they are told apart).

        `inputs` for `input` or `input:` indented under `container:` would otherwise be
        silently ignored and change what the pipeline does.
        """
        for key, _ in node.entries:
            if key.value in place.keys:
                continue
            # Only MAX_DIAGNOSTICS warnings are returned: past that, spare the hint's cost.
            self._unknown_keys += 1
            hint = self._unknown_keys <= MAX_DIAGNOSTICS
            verdict = judge(key.value, place, owner, inside, hint=hint)
            if verdict.severity == "error":
                self.report.error(key.mark, verdict.message)
            else:
                self.report.warning(key.mark, verdict.message)

    def misspelt(self, node: Map, key: str, place: Place, owner: str) -> bool:
        """Whether `node` lacks `key` because a typo of it was written instead; the typo is
        reported (as `keys` reports it), so a caller says nothing more about the missing key."""
        for written, _ in node.entries:
            if written.value in place.keys:
                continue
            verdict = judge(written.value, place, owner)
            if key in verdict.meant:
                self.report.error(written.mark, verdict.message)
                return True
        return False

    def mapping(self, node: Node, what: str) -> Map | None:
        """`node` when it is a mapping; reports and returns None otherwise."""
        if isinstance(node, Map):
            return node
        self.report.error(node.mark, f"{what} must be a mapping, not {describe(node)}")
        return None

    def sequence(self, node: Node, what: str) -> Seq | None:
        """`node` when it is a list; reports and returns None otherwise."""
        if isinstance(node, Seq):
            return node
        self.report.error(node.mark, f"{what} must be a list, not {describe(node)}")
        return None

    def require(self, node: Map, key: str, owner: str, place: Place) -> Node | None:
        """The value of a key `owner` (a mapping of kind `place`) must have; reports and
        returns None when absent, naming the typo instead when one was written."""
        value = node.get(key)
        if value is None and not self.misspelt(node, key, place, owner):
            self.report.error(node.mark, f"{owner} is missing `{key}`")
        return value

    def text(self, node: Node, what: str, *, optional: bool = False) -> str | None:
        """The text of a scalar. A null is None when `optional`, an error otherwise."""
        if not isinstance(node, Scalar):
            self.report.error(node.mark, f"{what} must be text, not {describe(node)}")
            return None
        if node.is_null:
            if not optional:
                self.report.error(node.mark, f"{what} has no value")
            return None
        if has_stray_opening(node.value):
            self.report.warning(
                node.mark,
                f"{what} contains '${{{{' that is not a placeholder like '${{{{ name }}}}'; "
                "it is kept as written",
            )
        return node.value

    def name(self, node: Node, what: str) -> str | None:
        """A name that follows the name rules; never a placeholder (names shape the DAG)."""
        value = self.text(node, what)
        if value is None or not isinstance(node, Scalar):
            return None
        if self.templated(node):
            self.report.error(
                node.mark,
                f"{what} cannot use pipeline parameters: names and links are fixed when the "
                "pipeline is created (import args and operator parameters can set them)",
                DEFINITION,
            )
            return None
        problem = name_problem(value)
        if problem is not None:
            self.report.error(node.mark, f"{what} {shown(value)} {problem}", DEFINITION)
            return None
        return value

    def integer(self, node: Node, what: str, *, low: int, high: int = MAX_INT) -> int | str | None:
        """A whole number in [low, high], or (while loading) the text of a placeholder."""
        if not isinstance(node, Scalar):
            self.report.error(node.mark, f"{what} must be a whole number, not {describe(node)}")
            return None
        if self.templated(node):
            return node.value
        number = self._whole_number(node, what)
        if number is None:
            return None
        if not low <= number <= high:
            bound = f"at least {low}" if number < low else f"at most {high}"
            self.report.error(
                node.mark, f"{what} must be {bound}, not {number}{_origin(node)}", DEFINITION
            )
            return None
        return number

    def path(self, node: Node, owner: str) -> str | None:
        """The path of `owner`: rooted, without `..`, normalized (`//a/./b/` is `/a/b`)."""
        value = self.text(node, f"the path of {owner}")
        if value is None or not isinstance(node, Scalar) or self.templated(node):
            return value
        problem = None
        parts = [part for part in value.split("/") if part not in ("", ".")]
        if not value.startswith("/"):
            problem = f"must be rooted: start it with '/' (e.g. {shown('/' + value)})"
        elif ".." in parts:
            problem = "must not contain '..'"
        elif not parts:
            problem = "must name a folder below '/'"
        elif ";" in value:
            problem = "must not contain ';' (it separates entries in NVIDIA_CLARA_INPUTPATHS)"
        elif not value.isprintable():
            problem = "must not contain control characters or line breaks"
        if problem is not None:
            self.report.error(
                node.mark, f"path {shown(value)}{_origin(node)} of {owner} {problem}", DEFINITION
            )
            return None
        return "/" + "/".join(parts)

    def text_list(self, node: Node, what: str) -> tuple[str, ...] | None:
        """A list of text values (numbers keep their text)."""
        items = self.sequence(node, what)
        if items is None:
            return None
        texts = [self.text(item, f"an item of {what}") for item in items.items]
        return tuple(text for text in texts if text is not None)

    def text_map(
        self, node: Node, what: str, *, key_problem: Callable[[str], str | None]
    ) -> dict[str, str] | None:
        """A mapping of text to text (numbers and booleans keep their text; null is '')."""
        mapping = self.mapping(node, what)
        if mapping is None:
            return None
        result: dict[str, str] = {}
        for key, value in mapping.entries:
            problem = key_problem(key.value)
            if problem is not None:
                self.report.error(key.mark, f"{what}: key {shown(key.value)} {problem}", DEFINITION)
                continue
            if isinstance(value, Scalar) and value.is_null:
                self.report.warning(value.mark, f"{what}: {key.value} has no value; set to ''")
                result[key.value] = ""
                continue
            text = self.text(value, f"{what}: {key.value}")
            if text is not None:
                result[key.value] = text
        return result

    def parameters(self, node: Node, what: str) -> dict[str, str | None]:
        """Template parameters: name -> default text, None where no default is given.

        Names follow the name rules and are unique ignoring case.
        """
        mapping = self.mapping(node, what)
        if mapping is None:
            return {}
        result: dict[str, str | None] = {}
        seen: dict[str, Scalar] = {}
        for key, value in mapping.entries:
            name = self.name(key, f"parameter name in {what}")
            if name is None:
                continue
            first = seen.get(name.lower())
            if first is not None:
                self.report.error(
                    key.mark,
                    f"{what}: parameter {name!r} is declared twice (also at line "
                    f"{first.mark.line}; names are not case-sensitive)",
                    DEFINITION,
                )
                continue
            seen[name.lower()] = key
            result[name] = self.text(value, f"{what}: {name}", optional=True)
        return result

    def _whole_number(self, node: Scalar, what: str) -> int | None:
        try:
            if node.tag == INT:
                return yaml_int(node.value)
            if node.tag == STR and _DECIMAL.match(node.value):
                return int(node.value)
        except ValueError:
            # int() refuses more than 4300 digits; `!!int x` gets here with any text.
            if len(node.value) > 100:
                self.report.error(node.mark, f"{what} is too large{_origin(node)}", DEFINITION)
                return None
        self.report.error(
            node.mark, f"{what} must be a whole number, not {describe(node)}{_origin(node)}"
        )
        return None


def _origin(node: Node) -> str:
    if isinstance(node, Scalar) and node.template is not None:
        return f" (from {shown(node.template)})"
    return ""
