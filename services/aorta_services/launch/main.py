"""The `aorta` command: the platform launchers (`up`, `serve`) beside the client commands.

It lives in `services/` because launching needs every service; the client commands themselves
come from `aorta.cli` and need nothing but the public API.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from aorta.cli import COMMANDS as CLIENT_COMMANDS
from aorta.cli import register as register_client_commands
from aorta.cli.lazy import LazyCommand, LazyGroup

# Only click is imported up front: `aorta --help` and `aorta version` answer at once, and each
# command imports what it needs when it runs (tests/unit/launch/test_fast_help.py).
LAZY_COMMANDS = {
    **CLIENT_COMMANDS,
    # The agent runs inside operator pods (init container and sidecar); it needs the blob
    # store, which the client commands must not import.
    "agent": LazyCommand(
        "aorta.agent.command:agent",
        "Move a run's bytes inside an operator pod (used by the Kubernetes executor).",
    ),
}


@click.group(
    cls=LazyGroup,
    lazy=LAZY_COMMANDS,
    load_all=register_client_commands,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="aorta", prog_name="aorta")
def cli() -> None:
    """Aorta: GPU inference pipelines, Clara-compatible, on Kubernetes or one machine."""


@cli.command()
@click.option("--grpc-port", default=30031, show_default=True, help="Port of the Clara API.")
@click.option(
    "--web-port",
    default=30080,
    show_default=True,
    help="Port of the web console, on the listen address (0: any free port).",
)
@click.option(
    "--listen",
    default="127.0.0.1",
    show_default=True,
    metavar="ADDRESS",
    help="Address the Clara API listens on; beyond loopback it needs --auth (or --insecure).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where state, payloads and logs live (default: $AORTA_DATA_DIR or ~/.local/share/aorta).",
)
@click.option("--nats-port", default=-1, help="Port of the embedded NATS server (-1: any free).")
@click.option(
    "--metrics-port",
    type=click.IntRange(min=0, max=65535),
    default=None,
    help="Port of /metrics (Prometheus) and /healthz on the listen address; 0: none. "
    "[default: 30090, skipped with a warning when in use]",
)
@click.option(
    "--auth",
    is_flag=True,
    help="Require bearer tokens; the first start writes an admin token to <data-dir>/admin.token.",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Allow listening beyond loopback without authentication (a warning on every start).",
)
@click.option(
    "--tls",
    "tls_mode",
    type=click.Choice(["auto"]),
    default=None,
    help="auto: make a private CA and a server certificate under the data dir and serve TLS.",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="PEM certificate the Clara API serves TLS with (with --tls-key).",
)
@click.option(
    "--tls-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="PEM private key of --tls-cert.",
)
@click.option(
    "--tls-client-ca",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Require client certificates signed by this CA (mutual TLS).",
)
@click.option(
    "--executor",
    type=click.Choice(["auto", "container", "local"]),
    default="auto",
    show_default=True,
    envvar="AORTA_EXECUTOR",
    show_envvar=True,
    help="Where operators run: containers, host processes, or auto (containers when a "
    "container engine answers at AORTA_CONTAINER_HOST, DOCKER_HOST or the usual sockets).",
)
@click.option(
    "--log-format",
    type=click.Choice(["json", "console"]),
    default=None,
    help="Keep every log line on stderr in this format. Default: at a terminal, the banner and "
    "warnings only (the detailed log goes to <data-dir>/logs/aorta.log); elsewhere, JSON.",
)
def up(
    grpc_port: int,
    web_port: int,
    listen: str,
    data_dir: Path | None,
    nats_port: int,
    metrics_port: int | None,
    auth: bool,
    insecure: bool,
    tls_mode: str | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_client_ca: Path | None,
    executor: str,
    log_format: str | None,
) -> None:
    """Run the whole platform on this machine until Ctrl-C."""
    # Imported here so that client commands do not load every service adapter on start-up.
    import asyncio

    from aorta.auth.tokens import default_data_dir
    from aorta.errors import AortaError
    from aorta_services.launch.embedded import DataDirBusy, EmbeddedOptions, run_embedded
    from aorta_services.launch.up_logging import plan_logging, start_logging

    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    if tls_mode and tls_cert:
        raise click.UsageError("--tls auto makes its own certificate; drop --tls-cert/--tls-key")
    if tls_client_ca and not (tls_mode or tls_cert):
        raise click.UsageError("--tls-client-ca needs TLS: add --tls auto or --tls-cert/--tls-key")
    environ = dict(os.environ)
    chosen = data_dir or default_data_dir(environ)
    # Everything the platform writes (state, payloads, logs, keys) is its user's alone.
    os.umask(0o077)
    logs = plan_logging(chosen, log_format, environ, terminal=sys.stderr.isatty())
    try:
        start_logging(logs)
    except OSError as exc:
        raise click.ClickException(f"cannot write the log {logs.log_file}: {exc}") from exc
    options = EmbeddedOptions(
        data_dir=chosen,
        listen=listen,
        grpc_port=grpc_port,
        web_port=web_port,
        nats_port=nats_port,
        metrics_port=metrics_port,
        auth=auth,
        insecure=insecure,
        tls_auto=tls_mode == "auto",
        tls_cert=tls_cert,
        tls_key=tls_key,
        tls_client_ca=tls_client_ca,
        executor=executor,
        log_file=logs.log_file,
    )
    try:
        asyncio.run(run_embedded(options, environ, long_running=True))
    except (DataDirBusy, AortaError, FileNotFoundError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc


@cli.command()
@click.argument("names", nargs=-1, required=True)
def serve(names: tuple[str, ...]) -> None:
    """Run one or more services (settings from AORTA_* variables) until SIGTERM."""
    from aorta.runtime.process import serve_services
    from aorta_services.launch import registry

    try:
        starters = registry.starters(list(names))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    serve_services(starters)


def main() -> None:
    cli()
