"""What every client command shares: the `--host`/`--ca`/`-o`/`--json`/`--quiet` options, the
connection, and the one place failures become messages and exit codes.

A command is written as `fn(session, **options) -> int | None` and decorated with
`with_session(...)`; it returns an exit code (None is 0) or raises. Failures of any kind (a
negative Clara header, a gRPC error, a local file problem, Ctrl-C) are reported once, here.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec

import click
import grpc

from aorta.cli.connection import Platform, Target, resolve_target
from aorta.cli.failures import CliFailure, ExitCode, rpc_failure
from aorta.cli.output import Output
from aorta.cli.output_format import FORMAT_HELP, OutputFormat, choose_mode, split_folder
from aorta.errors import AortaError, Invalid

P = ParamSpec("P")
Command = Callable[Concatenate["Session", P], int | None]


@dataclass
class Session:
    """One invocation: how to print, and (for remote commands) the platform to talk to."""

    output: Output
    target: Target | None = None
    _platform: Platform | None = field(default=None, repr=False)

    @property
    def platform(self) -> Platform:
        """The platform's stubs; the channel opens on first use."""
        if self._platform is None:
            if self.target is None:
                raise AssertionError("a local command asked for the platform")
            self._platform = Platform(self.target)
        return self._platform

    @property
    def last_method(self) -> str:
        """The RPC most recently called, for messages about a failed call."""
        return self._platform.last_method if self._platform else "a platform call"

    @property
    def address(self) -> str:
        return self.target.address if self.target else "(local)"

    def close(self) -> None:
        if self._platform is not None:
            self._platform.close()


def run_guarded(session: Session, body: Callable[[], int | None]) -> int:
    """Runs `body` and returns its exit code, reporting any failure on stderr."""
    try:
        return int(body() or ExitCode.OK)
    except CliFailure as failure:
        session.output.error(failure.message)
        return failure.exit_code
    except grpc.RpcError as error:
        unreachable_or_refused = rpc_failure(
            error, address=session.address, method=session.last_method
        )
        session.output.error(unreachable_or_refused.message)
        return unreachable_or_refused.exit_code
    except AortaError as error:
        session.output.error("\n".join(error.messages))
        return ExitCode.USAGE if isinstance(error, Invalid) else ExitCode.FAILED
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        session.output.error(f"{where}{error.strerror or error}")
        return ExitCode.FAILED
    except KeyboardInterrupt:
        session.output.error("interrupted")
        return ExitCode.INTERRUPTED
    finally:
        session.close()


def with_session(
    *,
    remote: bool = True,
    json_output: bool = True,
    quiet: bool = True,
    short_output: bool = True,
    folder_option: str | None = None,
) -> Callable[[Command[P]], Callable[..., None]]:
    """Adds the shared options to a command and runs it with a `Session`.

    `remote` adds `--host`, `--ca` and a connection; `json_output` adds the format flag
    `-o/--output json|yaml|wide|name` and `--json` (the same as `-o json`); `quiet` adds
    `-q/--quiet`. `short_output=False` leaves `-o` to the command (`logs -o OPERATOR`: the
    formats are then reached through `--output` alone). `folder_option` names the command's
    parameter that an `-o` value which is not a format goes to (`run -o FOLDER`).
    """

    def decorate(command: Command[P]) -> Callable[..., None]:
        @functools.wraps(command)
        def wrapper(*args: Any, **options: Any) -> None:
            host = options.pop("host", None)
            ca = options.pop("ca", None)
            chosen, folder = split_folder(options.pop("output_format", None))
            if folder is not None and folder_option is not None:
                if options.get(folder_option) is not None:
                    raise click.UsageError(f"-o {folder} names a folder, and so does the option")
                options[folder_option] = folder
            mode = choose_mode(chosen, options.pop("as_json", False), options.pop("quiet", False))
            output = Output(mode)
            try:
                target = resolve_target(host, os.environ, ca=ca) if remote else None
            except CliFailure as failure:
                output.error(failure.message)
                raise click.exceptions.Exit(failure.exit_code) from failure
            session = Session(output, target)
            code = run_guarded(session, lambda: command(session, *args, **options))
            if code:
                raise click.exceptions.Exit(code)

        decorated: Callable[..., None] = wrapper
        if quiet:
            decorated = click.option(
                "-q", "--quiet", is_flag=True, help="Print ids alone, one per line."
            )(decorated)
        if json_output:
            decorated = click.option(
                "--json", "as_json", is_flag=True, help="Print JSON (the same as -o json)."
            )(decorated)
            decorated = click.option(
                *(("-o", "--output") if short_output else ("--output",)),
                "output_format",
                type=OutputFormat(folder_allowed=folder_option is not None),
                default=None,
                help=FORMAT_HELP
                + (" Any other value: the folder for the outputs." if folder_option else ""),
            )(decorated)
        if remote:
            decorated = click.option(
                "--ca",
                metavar="FILE",
                help="Use TLS, trusting this CA certificate ('system': public CAs) [env AORTA_CA].",
            )(decorated)
            decorated = click.option(
                "--host",
                metavar="HOST[:PORT]",
                help="The platform's gRPC address [env AORTA_HOST; default 127.0.0.1:30031].",
            )(decorated)
        return decorated

    return decorate
