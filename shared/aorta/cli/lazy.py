"""A command group that imports a command's module only when that command runs.

`aorta --help` and `aorta version` must answer at once, but the client commands import gRPC,
the generated stubs, rich and yaml, and the launchers import every service. The root group
therefore knows each top-level command by an index entry, a `module:attribute` to import and a
one-line summary for the listing, and imports the module when the command is looked up to run.
A name missing from the index loads every command (through the group's `load_all`), so a
command someone registered without indexing it still runs; `tests/unit/cli/test_lazy_index.py`
keeps the index equal to what loading everything gives.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import click


@dataclass(frozen=True)
class LazyCommand:
    """Where a top-level command lives and what the listing says about it.

    `target` is `module:attribute`, naming either a click command or a function that returns
    click commands (one of which has the indexed name). `summary` is the command's short help
    as `click.Command.get_short_help_str` gives it with no length limit.
    """

    target: str
    summary: str


class LazyGroup(click.Group):
    """A `click.Group` whose indexed commands are imported on first lookup.

    - `lazy`: the index, by command name.
    - `load_all`: registers every command on the group (the eager path); called once, for a
      name the index does not know.
    """

    def __init__(
        self,
        *args: Any,
        lazy: Mapping[str, LazyCommand] | None = None,
        load_all: Callable[[click.Group], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, LazyCommand] = dict(lazy or {})
        self._load_all = load_all

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            self._load(cmd_name)
        return self.commands.get(cmd_name)

    def load_everything(self) -> None:
        """Imports every indexed command and runs `load_all`: the group as an eager one."""
        for name in self.lazy:
            self._load(name)
        self._load_rest()

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The listing of `--help`, from the index for commands not imported yet."""
        names = self.list_commands(ctx)
        shown = [n for n in names if n not in self.commands or not self.commands[n].hidden]
        if not shown:
            return
        limit = formatter.width - 6 - max(len(name) for name in shown)
        rows = []
        for name in shown:
            command = self.commands.get(name)
            if command is not None:
                rows.append((name, command.get_short_help_str(limit)))
            else:
                # A bare command shortens the summary exactly as the real one would.
                summary = click.Command(name, help=self.lazy[name].summary)
                rows.append((name, summary.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def _load(self, name: str) -> None:
        entry = self.lazy.get(name)
        if entry is None:
            self._load_rest()
            return
        for command in _import_commands(entry.target):
            if command.name is not None and command.name not in self.commands:
                self.add_command(command)

    def _load_rest(self) -> None:
        load_all, self._load_all = self._load_all, None
        if load_all is not None:
            load_all(self)


def _import_commands(target: str) -> Iterable[click.Command]:
    module_name, _, attribute = target.partition(":")
    found = getattr(importlib.import_module(module_name), attribute)
    if isinstance(found, click.Command):
        return [found]
    commands: Iterable[click.Command] = found()
    return commands
