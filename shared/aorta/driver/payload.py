"""What an operator script sees of its job's data: named input and output folders.

Clara's driver hands `execute` a `clara.Payload`, and the runner injects the same object as the
global `clara_payload`. Both are built from `NVIDIA_CLARA_INPUTPATHS`/`OUTPUTPATHS` through
`aorta.operator_env`, so the names follow its rules (`payload`, `upstream/output`, `this/output`).
"""

from __future__ import annotations

from dataclasses import dataclass

from aorta.operator_env import OperatorEnvironment, PathEntry


@dataclass(frozen=True)
class PayloadEntry:
    """One input or output folder: its entry `name` and its `path` as mounted for the operator."""

    name: str
    path: str


class Payload:
    """The current stage's inputs and outputs.

    `input_entries` and `output_entries` are lists, as Clara documented them; each access returns
    a fresh list, so a script cannot change what the driver or another callback sees.
    """

    def __init__(
        self, input_entries: tuple[PayloadEntry, ...], output_entries: tuple[PayloadEntry, ...]
    ) -> None:
        self._inputs = input_entries
        self._outputs = output_entries

    @classmethod
    def from_environment(cls, environment: OperatorEnvironment) -> Payload:
        """The payload the platform described in `environment`."""
        return cls(_entries(environment.inputs), _entries(environment.outputs))

    @property
    def input_entries(self) -> list[PayloadEntry]:
        return list(self._inputs)

    @property
    def output_entries(self) -> list[PayloadEntry]:
        return list(self._outputs)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Payload):
            return NotImplemented
        return (self._inputs, self._outputs) == (other._inputs, other._outputs)

    def __hash__(self) -> int:
        return hash((self._inputs, self._outputs))

    def __repr__(self) -> str:
        return f"Payload(input_entries={list(self._inputs)}, output_entries={list(self._outputs)})"


def _entries(paths: tuple[PathEntry, ...]) -> tuple[PayloadEntry, ...]:
    return tuple(PayloadEntry(name=p.name, path=p.path) for p in paths)
