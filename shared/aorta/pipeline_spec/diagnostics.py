"""What is wrong with a definition, where, and how bad; and the error that carries it to a caller.

Every problem the loader finds becomes a `Diagnostic` pointing at a file, line and column, so a
person can go straight to it. The loader collects them instead of stopping at the first, and
raises one `DefinitionError` carrying all of them, because fixing a definition one error per
`Pipelines.Create` round-trip is miserable.

Which Clara code an error carries:

- `PIPELINE_LOAD_ERROR` (-0x1101), "cannot be read": unparseable YAML, non-UTF-8 junk, a root that
  is not a mapping, duplicate keys, aliases, documents over the size/depth/operator limits, values
  of the wrong YAML type, missing or misspelt keys, keys a construct does not allow, a missing or
  unsupported `api-version`, imports that are missing, rooted or cyclic.
- `PIPELINE_DEFINITION_ERROR` (-0x1100), "read, but describes an invalid pipeline": names that
  break the name rules, duplicate names, paths that are not rooted or clash, numbers out of range,
  unknown types, `from`/`name` that reference nothing, self-references and cycles, linked
  inputs and outputs whose types disagree, placeholders with no declared parameter.
- `JOB_VARIABLES_INVALID` (-0x2102), from `resolve_parameters` only: the `Jobs.Start` variables
  name an undeclared parameter, leave a placeholder without a value, or produce invalid values.

When a definition has errors of several kinds, the error's code is the first of load, variables,
definition that occurs: a document that cannot be read is reported as such.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aorta.errors import ErrorCode, Invalid

Severity = Literal["error", "warning"]

LOAD = ErrorCode.PIPELINE_LOAD_ERROR
DEFINITION = ErrorCode.PIPELINE_DEFINITION_ERROR
VARIABLES = ErrorCode.JOB_VARIABLES_INVALID

MAX_DIAGNOSTICS = 100
"""At most this many errors (and as many warnings) are reported; a count stands for the rest."""

_CODE_PRECEDENCE = (LOAD, VARIABLES, DEFINITION)


@dataclass(frozen=True, slots=True)
class Mark:
    """A position in one definition file: 1-based line and column (in characters)."""

    file: str
    line: int
    column: int


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a definition.

    `code` is the Clara response code an error maps to (see the module docstring); warnings
    carry None.
    """

    severity: Severity
    message: str
    file: str
    line: int
    column: int
    code: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.severity}: {self.message}"


class DefinitionError(Invalid):
    """A definition (or a set of `Jobs.Start` variables) that cannot be used.

    `diagnostics` holds every error found, in file order; `warnings` the warnings found before
    the loader gave up; `messages` the errors formatted as `file:line:col: error: message`, ready
    for `ResponseHeader.messages`.
    """

    default_code = DEFINITION

    def __init__(
        self,
        diagnostics: Iterable[Diagnostic],
        *,
        warnings: Iterable[Diagnostic] = (),
        omitted: int = 0,
    ) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        self.warnings: tuple[Diagnostic, ...] = tuple(warnings)
        codes = {d.code for d in self.diagnostics}
        code = next((c for c in _CODE_PRECEDENCE if c in codes), DEFINITION)
        lines = [str(d) for d in self.diagnostics]
        if omitted:
            lines.append(f"... and {omitted} more errors")
        super().__init__(*lines, code=code)

    def to_wire(self) -> dict[str, Any]:
        """Crosses the bus as an `Invalid`, the kind every service knows how to rebuild."""
        return {**super().to_wire(), "kind": Invalid.__name__}


class Report:
    """Collects the diagnostics of one load or resolution, in the order files were sent.

    `code` forces one Clara code on every error (resolution reports everything as a variables
    problem); otherwise each error keeps the code it was reported with.
    """

    def __init__(self, file_order: Mapping[str, int] | None = None, code: int | None = None):
        self._order = dict(file_order or {})
        self._code = code
        self._errors: list[Diagnostic] = []
        self._warnings: list[Diagnostic] = []
        self._seen: set[tuple[str, int, int, str]] = set()

    def order_files(self, order: Mapping[str, int]) -> None:
        """Sorts diagnostics by file in `order` (the order files were sent)."""
        self._order = dict(order)

    @property
    def has_errors(self) -> bool:
        return bool(self._errors)

    def error(self, at: Mark, message: str, code: int = LOAD) -> None:
        """Records an error at `at`; the same message at the same place is recorded once."""
        if self._first_time(at, message):
            chosen = self._code if self._code is not None else code
            self._errors.append(Diagnostic("error", message, at.file, at.line, at.column, chosen))

    def warning(self, at: Mark, message: str) -> None:
        """Records a warning at `at`; the same message at the same place is recorded once."""
        if self._first_time(at, message):
            self._warnings.append(Diagnostic("warning", message, at.file, at.line, at.column))

    def warnings(self) -> tuple[Diagnostic, ...]:
        """The warnings so far, in file order, at most `MAX_DIAGNOSTICS`."""
        return tuple(self._sorted(self._warnings)[:MAX_DIAGNOSTICS])

    def failure(self) -> DefinitionError:
        """The error to raise for what was collected (call only when `has_errors`)."""
        errors = self._sorted(self._errors)
        return DefinitionError(
            errors[:MAX_DIAGNOSTICS],
            warnings=self.warnings(),
            omitted=max(0, len(errors) - MAX_DIAGNOSTICS),
        )

    def _first_time(self, at: Mark, message: str) -> bool:
        # An aliased YAML node is read once per use; its problems should be reported once.
        key = (at.file, at.line, at.column, message)
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    def _sorted(self, items: list[Diagnostic]) -> list[Diagnostic]:
        last = len(self._order)
        return sorted(items, key=lambda d: (self._order.get(d.file, last), d.line, d.column))
