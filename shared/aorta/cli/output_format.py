"""`-o/--output FORMAT`, the format flag of every command that prints, and how it combines with
`--json` (kept as `-o json`) and `-q` into one output `Mode`.

A mistyped format is a usage error that lists the formats and the likely one ("use -o
json|yaml|wide|name"). `aorta run` gives `-o` a second meaning, kept from its first version: a
value that is not a format names the folder its outputs are downloaded into.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import click

from aorta.cli.output import FORMATS, Mode

_HUMAN_NAMES = ("table", "human")
"""Spellings of the default mode, accepted so that `-o table` (Aorta's first `audit`) works."""

FORMAT_HELP = "Output format: json, yaml, wide (more columns) or name (kind/id per line)."
USE_FORMATS = "use -o " + "|".join(FORMATS)


def close_format(value: str) -> str | None:
    """The format `value` most likely misspells, if any."""
    found = difflib.get_close_matches(value.strip().lower(), FORMATS, n=1, cutoff=0.6)
    return found[0] if found else None


def _is_format(value: str) -> bool:
    return value.strip().lower() in (*FORMATS, *_HUMAN_NAMES)


class OutputFormat(click.ParamType[str]):
    """A format name, in lower case; with `folder_allowed`, any other value is kept as given
    (a folder), unless it is a near miss of a format and no such folder exists."""

    name = "format"

    def __init__(self, *, folder_allowed: bool = False) -> None:
        self.folder_allowed = folder_allowed

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if _is_format(text):
            return text.strip().lower()
        likely = close_format(text)
        if self.folder_allowed and (likely is None or Path(text).exists()):
            return text
        hint = f" (did you mean -o {likely}?)" if likely else ""
        folder = (
            f"; for a folder named {text!r}, give --results {text}" if self.folder_allowed else ""
        )
        self.fail(f"{text!r} is not an output format: {USE_FORMATS}{hint}{folder}", param, ctx)

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "[" + "|".join(FORMATS) + "]" + ("|FOLDER" if self.folder_allowed else "")


def split_folder(value: str | None) -> tuple[str | None, Path | None]:
    """(format, folder) from an `-o` value that may name a folder (see `OutputFormat`)."""
    if value is None or _is_format(value):
        return value, None
    return None, Path(value)


def choose_mode(output: str | None, as_json: bool, quiet: bool) -> Mode:
    """The one mode `-o`, `--json` and `-q` ask for together; contradictions are usage errors."""
    chosen = "json" if as_json else output
    if as_json and output not in (None, "json"):
        raise click.UsageError(f"--json means -o json; give one format, not also -o {output}")
    if quiet and chosen is not None:
        raise click.UsageError(f"-q prints ids alone; it cannot be combined with -o {chosen}")
    if quiet:
        return Mode.QUIET
    if chosen is None or chosen in _HUMAN_NAMES:
        return Mode.HUMAN
    return Mode(chosen)
