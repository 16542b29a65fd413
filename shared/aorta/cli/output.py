"""How a command writes: for people (tables, trees, colours on a terminal; `wide` adds columns),
JSON or YAML documents, `kind/id` names (`-o name`, as kubectl prints them), or ids alone (`-q`).

Results go to stdout; progress, notes and errors go to stderr, so `aorta ... | script` always
reads clean output. Colour and live displays appear only on a terminal, and rich honours
`NO_COLOR` and `TERM=dumb`. Off a terminal, tables and trees are printed as plain aligned text
without trailing spaces, wide enough that ids are never wrapped.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TextIO

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

_PLAIN_WIDTH = 1000
"""Columns of plain (non-terminal) output: wide enough that nothing wraps."""


class Mode(Enum):
    """What the user asked the command to print."""

    HUMAN = "human"
    WIDE = "wide"
    JSON = "json"
    YAML = "yaml"
    NAME = "name"
    QUIET = "quiet"


FORMATS: tuple[str, ...] = ("json", "yaml", "wide", "name")
"""The values of `-o/--output`, in the order help and messages list them."""


def _console(stderr: bool) -> Console:
    # markup and emoji off: job names and log lines are data, never rich markup.
    return Console(stderr=stderr, markup=False, emoji=False, highlight=False)


@dataclass
class Output:
    """The streams of one command invocation and the mode it prints in."""

    mode: Mode = Mode.HUMAN
    out: Console = field(default_factory=lambda: _console(stderr=False))
    err: Console = field(default_factory=lambda: _console(stderr=True))

    @property
    def human(self) -> bool:
        """Output for people: the default and `-o wide` (which only adds columns)."""
        return self.mode in (Mode.HUMAN, Mode.WIDE)

    @property
    def wide(self) -> bool:
        return self.mode is Mode.WIDE

    @property
    def as_json(self) -> bool:
        return self.mode is Mode.JSON

    @property
    def structured(self) -> bool:
        """A document for programs: `-o json` (`--json`) or `-o yaml`."""
        return self.mode in (Mode.JSON, Mode.YAML)

    @property
    def quiet(self) -> bool:
        return self.mode is Mode.QUIET

    @property
    def names(self) -> bool:
        """`-o name`: one `kind/id` per line."""
        return self.mode is Mode.NAME

    def emit(
        self,
        *,
        human: RenderableType | str,
        document: Any,
        ids: Sequence[str] = (),
        kind: str = "",
        wide: RenderableType | None = None,
    ) -> None:
        """A command's result in the chosen mode: `human` for people (`wide` instead with
        `-o wide`, when the command has more columns to show), `document` as JSON or YAML, `ids`
        alone with `-q`, and `kind/id` per id with `-o name`."""
        if self.structured:
            self.document(document)
        elif self.quiet or self.names:
            self.identify(kind, *ids)
        elif self.wide and wide is not None:
            self.show(wide)
        elif isinstance(human, str):
            self.line(human)
        else:
            self.show(human)

    def identify(self, kind: str, *values: str) -> None:
        """`values` one per line: ids alone with `-q`, `kind/id` with `-o name` (bare when
        `kind` is ""); nothing in the other modes, which print their own results."""
        if self.quiet:
            self.ids(*values)
        elif self.names:
            self.ids(*(f"{kind}/{value}" if kind else value for value in values))

    @property
    def live(self) -> bool:
        """Whether live displays (watch views) may redraw stdout in place."""
        return self.human and self.out.is_terminal

    @property
    def show_progress(self) -> bool:
        """Transfer progress bars: for people at a terminal only."""
        return self.human and self.err.is_terminal

    def line(self, text: str | Text = "") -> None:
        """One line of result on stdout (human mode)."""
        self.show(text if isinstance(text, Text) else Text(text))

    def show(self, renderable: RenderableType) -> None:
        """A rich renderable on stdout: styled on a terminal, plain text otherwise."""
        _write(self.out, renderable, sys.stdout)

    def note(self, text: str) -> None:
        """A remark for people on stderr (never in JSON or quiet mode)."""
        if self.human:
            _write(self.err, Text(text, style="dim"), sys.stderr)

    def error(self, text: str) -> None:
        """An error on stderr, in every mode."""
        _write(self.err, Text("error: ", style="bold red") + Text(text), sys.stderr)

    def warning(self, text: str) -> None:
        """A warning on stderr, in every mode: it goes where errors go, never into results."""
        _write(self.err, Text("warning: ", style="bold yellow") + Text(text), sys.stderr)

    def ids(self, *values: str) -> None:
        """Ids alone, one per line (quiet mode)."""
        for value in values:
            sys.stdout.write(f"{value}\n")
        sys.stdout.flush()

    def json(self, document: Any, *, compact: bool = False) -> None:
        """One JSON document on stdout; `compact` gives one line (JSON Lines)."""
        text = (
            json.dumps(document, separators=(",", ":"))
            if compact
            else json.dumps(document, indent=2)
        )
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def document(self, document: Any, *, stream: bool = False) -> None:
        """One document in the chosen format: JSON (one line each when `stream`ing changes, as
        JSON Lines), or YAML (each streamed document opened by `---`, as a YAML stream)."""
        if self.mode is Mode.YAML:
            import yaml  # only `-o yaml` needs it, and it is slow to import

            text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
            sys.stdout.write(("---\n" if stream else "") + text)
            sys.stdout.flush()
        else:
            self.json(document, compact=stream)

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[str | Text]]) -> None:
        """A table with a header row; empty tables print the header alone."""
        self.show(table(columns, rows))


def _write(console: Console, renderable: RenderableType, stream: TextIO) -> None:
    if console.is_terminal:
        console.print(renderable)
    else:
        stream.write(plain(renderable))
        stream.flush()


def table(columns: Sequence[str], rows: Iterable[Sequence[str | Text]]) -> Table:
    """A borderless table in the style of `kubectl get`: bold headers, two-space gaps."""
    grid = Table(box=None, pad_edge=False, padding=(0, 2, 0, 0), header_style="bold")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*row)
    return grid


def plain(renderable: RenderableType) -> str:
    """`renderable` as uncoloured text, each line without trailing spaces."""
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=_PLAIN_WIDTH,
        color_system=None,
        force_terminal=False,
        markup=False,
        emoji=False,
        highlight=False,
    )
    console.print(renderable)
    lines = buffer.getvalue().splitlines()
    return "".join(line.rstrip() + "\n" for line in lines)


def key_values(pairs: Iterable[tuple[str, str | Text]]) -> Text:
    """`key: value` lines: the stable, parseable head of every `describe`."""
    text = Text()
    for key, value in pairs:
        text.append(f"{key}: ", style="bold")
        text.append(value if isinstance(value, Text) else Text(value))
        text.append("\n")
    text.rstrip()
    return text
