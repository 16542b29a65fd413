"""`aorta version` and `aorta utilization [--watch]`: the platform itself."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import click
from rich.console import RenderableType
from rich.live import Live
from rich.text import Text

import aorta
from aorta.api import clara_pb2
from aorta.cli.connection import UNARY_TIMEOUT, check, checked_replies, request_header
from aorta.cli.humanize import iso, moment
from aorta.cli.output import key_values, table
from aorta.cli.session import Session, with_session

GpuMetric = clara_pb2.ClaraUtilizationResponse.GpuUtilization


@click.command("version")
@with_session()
def version(session: Session) -> None:
    """Print the client's version and the platform's.

    -q prints the client's alone and asks nothing of the platform, so it works with none up.
    """
    client = aorta.__version__
    if session.output.quiet:
        session.output.ids(client)
        return
    request = clara_pb2.ClaraVersionRequest(header=request_header())
    response = session.platform.clara.Version(request, timeout=UNARY_TIMEOUT)
    check(response, "asking the platform for its version")
    found = response.version
    server = f"{found.major}.{found.minor}.{found.patch}" + (
        f"-{found.label}" if found.label else ""
    )
    pairs = [("client", f"aorta {client}"), ("server", server), ("host", session.address)]
    pairs += [("platform", message) for message in response.header.messages]
    session.output.emit(
        human=key_values(pairs),
        document={
            "client": client,
            "server": server,
            "host": session.address,
            "messages": list(response.header.messages),
        },
    )


def _gpu_document(gpu: GpuMetric) -> dict[str, Any]:
    return {
        "node_id": gpu.node_id,
        "pcie_id": gpu.pcie_id,
        "compute_utilization": gpu.compute_utilization,
        "memory_used_mb": gpu.memory_used,
        "memory_free_mb": gpu.memory_free,
        "memory_utilization": gpu.memory_utilization,
        "timestamp": iso(moment(gpu.timestamp)),
        "processes": [
            {"name": p.name, "job_id": p.job_id.value or None} for p in gpu.process_details
        ],
    }


def _gpu_view(gpus: list[GpuMetric], address: str) -> RenderableType:
    if not gpus:
        return Text(f"No GPUs reported by the platform at {address}.")
    rows = []
    for gpu in gpus:
        total = gpu.memory_used + gpu.memory_free
        processes = ", ".join(
            f"{p.name}@{p.job_id.value[:8]}" if p.job_id.value else p.name
            for p in gpu.process_details
        )
        rows.append(
            (
                gpu.node_id or "-",
                str(gpu.pcie_id),
                f"{gpu.compute_utilization * 100:.0f}%",
                f"{gpu.memory_used:,} / {total:,} MB ({gpu.memory_utilization * 100:.0f}%)",
                processes or "-",
            )
        )
    return table(["NODE", "GPU", "COMPUTE", "MEMORY", "PROCESSES"], rows)


def _snapshots(session: Session, watch: bool) -> Iterable[list[GpuMetric]]:
    """Each message of the Utilization stream is one snapshot of every GPU."""
    request = clara_pb2.ClaraUtilizationRequest(header=request_header(), watch=watch)
    for response in checked_replies(
        session.platform.clara.Utilization(request), "reading GPU utilization"
    ):
        yield list(response.gpu_metrics)


@click.command("utilization")
@click.option("-w", "--watch", is_flag=True, help="Keep showing new samples until Ctrl-C.")
@with_session(quiet=False)
def utilization(session: Session, watch: bool) -> int:
    """Show the GPUs the platform manages and what runs on them."""
    output = session.output
    if not watch:
        gpus = [gpu for snapshot in _snapshots(session, False) for gpu in snapshot]
        output.emit(
            human=_gpu_view(gpus, session.address), document=[_gpu_document(g) for g in gpus]
        )
        return 0
    try:
        if output.live:
            with Live(console=output.out, auto_refresh=False) as live:
                for snapshot in _snapshots(session, True):
                    live.update(_gpu_view(snapshot, session.address), refresh=True)
        else:
            for snapshot in _snapshots(session, True):
                if output.structured:
                    output.document([_gpu_document(g) for g in snapshot], stream=True)
                else:
                    output.show(_gpu_view(snapshot, session.address))
    except KeyboardInterrupt:
        # Ctrl-C is how a watch ends: not a failure.
        return 0
    return 0
