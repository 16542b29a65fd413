"""The `aorta` client commands: Clara's verbs (`create pipeline`, `create job`, `start job`,
`describe job`, `download`, ...) and a few of Aorta's own (`run`, `version`, `utilization`,
`operator`, `token`, `audit`).

They need nothing but the generated Clara API stubs and the shared helpers, so they work
against any Clara-compatible platform. `register` adds them to the root `aorta` group, which
`aorta_services.launch.main` owns beside the launchers (`up`, `serve`).
"""

from __future__ import annotations

import click

from aorta.cli.audit import audit
from aorta.cli.operator import operator
from aorta.cli.platform import utilization, version
from aorta.cli.run import run
from aorta.cli.token import token
from aorta.cli.verbs import verb_groups


def register(cli: click.Group) -> None:
    """Adds every client command to `cli`."""
    for command in (*verb_groups(), run, version, utilization, operator, token, audit):
        cli.add_command(command)


__all__ = ["register"]
