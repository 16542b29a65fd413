"""The `aorta` client commands: Clara's verbs (`create pipeline`, `create job`, `start job`,
`describe job`, `download`, ...), the aliases kubectl users type (`get`), and a few of
Aorta's own (`run`, `queue`, `version`, `utilization`, `operator`, `token`, `audit`, `help`).

They need nothing but the generated Clara API stubs and the shared helpers, so they work
against any Clara-compatible platform. `aorta_services.launch.main` owns the root `aorta` group
beside the launchers (`up`, `serve`): it lists the commands from `COMMANDS` and imports a
command's module only when that command runs (`aorta.cli.lazy`), so `aorta --help` loads
neither gRPC nor rich. `register` adds every command at once.
"""

from __future__ import annotations

import click

from aorta.cli.lazy import LazyCommand

_VERBS = "aorta.cli.verbs:verb_groups"

COMMANDS: dict[str, LazyCommand] = {
    "audit": LazyCommand(
        "aorta.cli.audit:audit",
        "Show the audit log: time, subject, client, method, resources and result (admin only).",
    ),
    "cancel": LazyCommand(_VERBS, "Cancel a job."),
    "create": LazyCommand(_VERBS, "Create a pipeline, job, model or payload."),
    "delete": LazyCommand(_VERBS, "Delete a pipeline, job, model or payload."),
    "describe": LazyCommand(_VERBS, "Show one pipeline, job, model or payload."),
    "download": LazyCommand(
        _VERBS, "Download payload files (the default), a job's or payload's, or a model."
    ),
    "get": LazyCommand(
        _VERBS,
        "List pipelines, jobs, models or payloads; with an ID, show one (kubectl's get).",
    ),
    "help": LazyCommand(
        "aorta.cli.help:help_command",
        "Show the help of a command: `aorta help`, `aorta help list jobs`.",
    ),
    "list": LazyCommand(_VERBS, "List pipelines, jobs, models, payloads or pipeline services."),
    "logs": LazyCommand(
        _VERBS, "Print a job's logs, every operator's or one (`aorta logs JOB [OP]`)."
    ),
    "operator": LazyCommand(
        "aorta.cli.operator:operator", "Write and try pipeline operators without the platform."
    ),
    "queue": LazyCommand(
        "aorta.cli.queue:queue",
        "Show the queue: every started job not admitted yet, in admission order, with why it "
        "waits.",
    ),
    "run": LazyCommand(
        "aorta.cli.run:run",
        "Run a pipeline on an input and fetch its results: create, upload, start, watch, download.",
    ),
    "start": LazyCommand(_VERBS, "Start a job."),
    "stop": LazyCommand(_VERBS, "Cancel a job (Clara's name for cancel)."),
    "token": LazyCommand(
        "aorta.cli.token:token", "Create, list and revoke the platform's bearer tokens."
    ),
    "update": LazyCommand(_VERBS, "Update a pipeline's definition."),
    "upload": LazyCommand(_VERBS, "Upload a file or a folder into a payload's input."),
    "utilization": LazyCommand(
        "aorta.cli.platform:utilization",
        "Show the GPUs the platform manages and what runs on them.",
    ),
    "version": LazyCommand(
        "aorta.cli.platform:version", "Print the client's version and the platform's."
    ),
}
"""Every top-level client command, for the lazy root group (`aorta.cli.lazy`)."""


def register(cli: click.Group) -> None:
    """Adds every client command to `cli` (importing them all)."""
    from aorta.cli.audit import audit
    from aorta.cli.help import help_command
    from aorta.cli.operator import operator
    from aorta.cli.platform import utilization, version
    from aorta.cli.queue import queue
    from aorta.cli.run import run
    from aorta.cli.token import token
    from aorta.cli.verbs import verb_groups

    for command in (
        *verb_groups(),
        run,
        queue,
        version,
        utilization,
        operator,
        token,
        audit,
        help_command,
    ):
        cli.add_command(command)


__all__ = ["COMMANDS", "register"]
