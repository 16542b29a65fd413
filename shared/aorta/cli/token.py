"""`aorta token create|list|revoke`: the bearer tokens of the platform's tokens file.

These commands edit the file on this machine (the gateway re-reads it when it changes), so
they are run by whoever administers the platform, where its data lives. A created token is
printed once and stored nowhere: the file keeps its SHA-256.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from aorta.auth.principal import Role
from aorta.auth.tokens import (
    TOKENS_FILE_VARIABLE,
    create_token,
    default_tokens_file,
    read_tokens,
    revoke_token,
)
from aorta.cli.credentials import TOKEN_FILE_VARIABLE, TOKEN_VARIABLE
from aorta.cli.failures import NotFoundFailure
from aorta.cli.output import table
from aorta.cli.session import Session, with_session
from aorta.errors import NotFound

_tokens_file_option = click.option(
    "--tokens-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"The tokens file [env {TOKENS_FILE_VARIABLE}; default: tokens.yaml in the data dir].",
)


def _chosen(tokens_file: Path | None) -> Path:
    return tokens_file or default_tokens_file(os.environ)


@click.group("token")
def token() -> None:
    """Create, list and revoke the platform's bearer tokens."""


@token.command("create")
@click.argument("name")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=click.Choice([role.value for role in Role]),
    help="What the token may do (repeat for several).",
)
@click.option("--replace", is_flag=True, help="Give an existing NAME a new token and roles.")
@_tokens_file_option
@with_session(remote=False, quiet=False)
def create(
    session: Session,
    name: str,
    roles: tuple[str, ...],
    replace: bool,
    tokens_file: Path | None,
) -> None:
    """Make a token named NAME and print it, this once.

    The tokens file keeps only its SHA-256; the platform reads the file again when it changes.
    """
    path = _chosen(tokens_file)
    chosen = sorted({Role(role) for role in roles}, key=lambda role: role.rank)
    made = create_token(path, name, chosen, replace=replace)
    session.output.emit(
        human=made,
        document={
            "name": name,
            "roles": [role.value for role in chosen],
            "token": made,
            "tokens_file": str(path),
        },
    )
    session.output.note(
        f"recorded {name} ({', '.join(role.value for role in chosen)}) in {path}; the token "
        "above is shown only this once."
    )
    session.output.note(
        f"use it: export {TOKEN_VARIABLE}=<the token>, or put it in a 0600 file and export "
        f"{TOKEN_FILE_VARIABLE}=<that file>"
    )


@token.command("list")
@_tokens_file_option
@with_session(remote=False)
def list_tokens(session: Session, tokens_file: Path | None) -> None:
    """List the tokens: names, roles, creation times.

    Never the tokens, nor their hashes.
    """
    entries = read_tokens(_chosen(tokens_file))
    rows = [
        (
            entry.name,
            ",".join(role.value for role in sorted(entry.roles, key=lambda role: role.rank)),
            entry.created,
        )
        for entry in entries
    ]
    session.output.emit(
        human=table(("NAME", "ROLES", "CREATED"), rows),
        document=[
            {"name": n, "roles": r.split(",") if r else [], "created": c} for n, r, c in rows
        ],
        ids=[entry.name for entry in entries],
        kind="token",
    )


@token.command("revoke")
@click.argument("name")
@_tokens_file_option
@with_session(remote=False, json_output=False, quiet=False)
def revoke(session: Session, name: str, tokens_file: Path | None) -> None:
    """Revoke the token named NAME.

    Calls with it are refused from then on.
    """
    path = _chosen(tokens_file)
    try:
        revoke_token(path, name)
    except NotFound as exc:
        raise NotFoundFailure("\n".join(exc.messages)) from exc
    session.output.note(f"revoked {name} in {path}")
