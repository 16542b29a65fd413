"""The `aorta` command: the platform launchers (`up`, `serve`) beside the client commands.

It lives in `services/` because launching needs every service; the client commands themselves
come from `aorta.cli` and need nothing but the public API.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import click

from aorta.agent.command import agent
from aorta.cli import register as register_client_commands
from aorta.errors import AortaError
from aorta.logger import configure_logging
from aorta_services.launch import registry


def _default_data_dir() -> Path:
    root = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(root) / "aorta"


def _log_format() -> str:
    return os.environ.get("AORTA_LOG_FORMAT") or ("console" if sys.stderr.isatty() else "json")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aorta", prog_name="aorta")
def cli() -> None:
    """Aorta: GPU inference pipelines, Clara-compatible, on Kubernetes or one machine."""


@cli.command()
@click.option("--grpc-port", default=30031, show_default=True, help="Port of the Clara API.")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where state, payloads and logs live (default: $AORTA_DATA_DIR or ~/.local/share/aorta).",
)
@click.option("--nats-port", default=-1, help="Port of the embedded NATS server (-1: any free).")
def up(grpc_port: int, host: str, data_dir: Path | None, nats_port: int) -> None:
    """Run the whole platform on this machine until Ctrl-C."""
    # Imported here so that client commands do not load every service adapter on start-up.
    from aorta_services.launch.embedded import DataDirBusy, EmbeddedOptions, run_embedded

    environ = dict(os.environ)
    chosen = data_dir or Path(environ.get("AORTA_DATA_DIR") or _default_data_dir())
    configure_logging(_log_format(), environ.get("AORTA_LOG_LEVEL", "info"))
    options = EmbeddedOptions(
        data_dir=chosen, grpc_host=host, grpc_port=grpc_port, nats_port=nats_port
    )
    try:
        asyncio.run(run_embedded(options, environ))
    except (DataDirBusy, AortaError, FileNotFoundError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc


@cli.command()
@click.argument("names", nargs=-1, required=True)
def serve(names: tuple[str, ...]) -> None:
    """Run one or more services (settings from AORTA_* variables) until SIGTERM."""
    from aorta.runtime.process import serve_services

    try:
        starters = registry.starters(list(names))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    serve_services(starters)


register_client_commands(cli)
# The agent runs inside operator pods (init container and sidecar); it needs the blob store,
# which the client commands must not import.
cli.add_command(agent)


def main() -> None:
    cli()
