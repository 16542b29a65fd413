"""`aorta agent fetch|push`: the commands the Aorta image runs beside an operator's container.

They are not for people: the Kubernetes executor puts them in every operator pod (init
container and sidecar, see `aorta.agent`), with their plan and the blob store settings in the
environment. Exit codes: 0 done; 1 the bytes could not be moved (the message is the last line
on stderr, which the kubelet keeps as the container's termination message); 2 a malformed
environment.

The group lives here rather than among the client commands (`aorta.cli`, which need nothing but
the public API): it moves bytes through the blob store and reads the cluster's API. The `aorta`
entry point (`aorta_services.launch.main`) adds it beside the launchers.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Coroutine
from typing import Any

import click

from aorta.errors import AortaError

_EXIT_FAILED = 1
_EXIT_USAGE = 2


@click.group()
def agent() -> None:
    """Move a run's bytes inside an operator pod (used by the Kubernetes executor)."""


@agent.command()
def fetch() -> None:
    """Fetch the run's inputs from the blob store into the pod's input volumes."""
    from aorta.agent.fetch import fetch_from_environ

    _run(lambda: fetch_from_environ(os.environ))


@agent.command()
def push() -> None:
    """Wait for the operator container to end, then store its outputs and its log."""
    from aorta.agent.push import push_from_environ
    from aorta.kubernetes.api import KubeApi

    # The kubelet signals every container of a pod at once (deletion, deadline); this one
    # keeps going so that the operator's log is stored, until the grace period's SIGKILL.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    async def main() -> None:
        api = await KubeApi.connect()
        try:
            await push_from_environ(os.environ, api)
        finally:
            await api.close()

    _run(main)


def _run(main: Callable[[], Coroutine[Any, Any, object]]) -> None:
    from aorta.agent.plan import PlanError
    from aorta.settings import SettingsError

    try:
        asyncio.run(main())
    except (PlanError, SettingsError) as error:
        click.echo(f"aorta agent: {error}", err=True)
        raise SystemExit(_EXIT_USAGE) from None
    except (AortaError, OSError) as error:
        click.echo(f"aorta agent: {error}", err=True)
        raise SystemExit(_EXIT_FAILED) from None
