"""`aorta help [COMMAND...]`: the help of any command, as `aorta COMMAND... --help` prints it
(`aorta help list jobs`), for those who type `help` first as git and kubectl taught them."""

from __future__ import annotations

import click


@click.command("help")
@click.argument("words", nargs=-1, metavar="[COMMAND]...")
@click.pass_context
def help_command(ctx: click.Context, words: tuple[str, ...]) -> None:
    """Show the help of a command: `aorta help`, `aorta help list jobs`."""
    current = ctx.find_root()
    command = current.command
    for word in words:
        if not isinstance(command, click.Group):
            raise click.UsageError(f"{current.command_path} has no subcommand {word!r}", ctx)
        name, found, _ = command.resolve_command(current, [word])
        if found is None:
            raise click.UsageError(f"no command {word!r} in {current.command_path}", ctx)
        current = click.Context(found, info_name=name, parent=current)
        command = found
    click.echo(command.get_help(current))
