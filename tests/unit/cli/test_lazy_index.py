"""The root group's index (`aorta.cli.COMMANDS` and the launcher's own entries) names every
command that loading them all registers, with the summary the command itself gives, and each
command runs from its entry alone."""

from __future__ import annotations

import click
import pytest

from aorta.cli.lazy import LazyCommand, LazyGroup
from aorta_services.launch.main import LAZY_COMMANDS, cli


def everything() -> dict[str, click.Command]:
    group = LazyGroup(lazy=LAZY_COMMANDS)
    group.load_everything()
    return dict(group.commands)


def test_the_index_names_every_registered_command_with_its_summary() -> None:
    registered = {
        name: command.get_short_help_str(limit=1000)
        for name, command in everything().items()
        if name not in cli.commands  # the launchers, defined beside the root group
    }
    indexed = {name: entry.summary for name, entry in LAZY_COMMANDS.items()}
    assert indexed == registered


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_each_entry_alone_gives_its_command(name: str) -> None:
    group = LazyGroup(lazy={name: LAZY_COMMANDS[name]})
    context = click.Context(group)
    command = group.get_command(context, name)
    assert command is not None and command.name == name


def test_a_name_missing_from_the_index_is_found_by_loading_everything() -> None:
    loads: list[str] = []

    def load_all(group: click.Group) -> None:
        loads.append("all")
        group.add_command(click.Command("hidden-gem", help="Found late."))

    group = LazyGroup(lazy={"run": LazyCommand("aorta.cli.run:run", "x")}, load_all=load_all)
    context = click.Context(group)
    assert group.get_command(context, "hidden-gem") is not None
    assert group.get_command(context, "nothing") is None
    assert loads == ["all"]


def test_the_listing_uses_summaries_without_importing() -> None:
    group = LazyGroup(
        name="root", lazy={"later": LazyCommand("no.such.module:thing", "Does a thing. Then more.")}
    )
    text = group.get_help(click.Context(group))
    assert "later  Does a thing." in text
