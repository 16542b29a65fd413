"""`aorta list services` and `aorta logs --service NAME`: the pipeline services jobs share
(`aorta.v1.Services`), with their image, tag, state, address and the jobs using them, and a
service's log."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import click
import grpc
from rich.table import Table

from aorta.api import aorta_services_pb2, aorta_services_pb2_grpc
from aorta.cli.connection import checked_replies, request_header
from aorta.cli.failures import ExitCode
from aorta.cli.humanize import NOT_SET, ago, iso
from aorta.cli.output import table
from aorta.cli.session import Session, with_session
from aorta.timestamps import utcnow


def services(session: Session) -> list[aorta_services_pb2.ServiceDetails]:
    """Every pipeline service the platform has started, by name."""
    stub = aorta_services_pb2_grpc.ServicesStub(session.platform.channel)
    request = aorta_services_pb2.ServicesListRequest(header=request_header())
    found = []
    for reply in checked_replies(stub.List(request), "listing the pipeline services"):
        if reply.HasField("service"):
            found.append(reply.service)
    return found


def users(service: aorta_services_pb2.ServiceDetails) -> list[str]:
    """The ids of the jobs using the service now."""
    return [job.value for job in service.job_ids]


def service_document(service: aorta_services_pb2.ServiceDetails) -> dict[str, Any]:
    """One service as `-o json|yaml` shows it."""
    return {
        "service_id": service.service_id,
        "name": service.name,
        "image": service.image,
        "tag": service.tag,
        "command": list(service.command),
        "state": service.state,
        "address": service.address or None,
        "jobs": users(service),
        "pipelines": [p.value for p in service.pipeline_ids],
        "last_used": iso(_moment(service.last_used)),
        "message": service.message or None,
        "gpus": service.gpus,
        "cpu": service.cpu,
        "memory_mb": service.memory_mb,
    }


def _moment(seconds: float) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


def _rows(
    found: Iterable[aorta_services_pb2.ServiceDetails], now: datetime
) -> list[tuple[str, ...]]:
    return [
        (
            service.name,
            service.image,
            service.tag or NOT_SET,
            service.state,
            service.address or NOT_SET,
            ", ".join(users(service)) or NOT_SET,
            ago(_moment(service.last_used), now),
        )
        for service in found
    ]


@click.command("services")
@with_session()
def list_services(session: Session) -> None:
    """List the pipeline services: name, image, tag, state, address and the jobs using each.

    One running service is shared by every operator and job that declares the same image, tag
    and command. -o wide adds each service's id and why it stopped or failed.
    """
    found = services(session)
    rows = _rows(found, utcnow())
    columns = ["NAME", "IMAGE", "TAG", "STATE", "ADDRESS", "JOBS", "LAST USED"]
    session.output.emit(
        human=table(columns, rows),
        wide=table(
            ["SERVICE ID", *columns, "MESSAGE"],
            [
                (service.service_id, *row, service.message.split("\n", 1)[0] or NOT_SET)
                for row, service in zip(rows, found, strict=True)
            ],
        ),
        document=[service_document(service) for service in found],
        ids=[service.service_id for service in found],
        kind="service",
    )


def job_services(
    session: Session, job_id: str, pipeline_id: str
) -> list[aorta_services_pb2.ServiceDetails]:
    """The services a job uses now, or that its pipeline declared (for a job that stopped);
    none from a platform without Aorta's Services API."""
    try:
        found = services(session)
    except grpc.RpcError as error:
        if error.code() is grpc.StatusCode.UNIMPLEMENTED:
            return []
        raise
    return [
        service
        for service in found
        if job_id in users(service) or pipeline_id in {p.value for p in service.pipeline_ids}
    ]


def services_table(found: Iterable[aorta_services_pb2.ServiceDetails]) -> Table:
    """The services of `describe job`: name, image:tag, state, address."""
    return table(
        ["SERVICE", "IMAGE", "STATE", "ADDRESS"],
        [
            (s.name, f"{s.image}:{s.tag}" if s.tag else s.image, s.state, s.address or NOT_SET)
            for s in found
        ],
    )


def print_service_logs(session: Session, service: str) -> int:
    """Prints a service's log (by id or name): raw lines, or one `{"service", "line"}`
    document per line with `-o json|yaml`. Returns the exit code."""
    stub = aorta_services_pb2_grpc.ServicesStub(session.platform.channel)
    request = aorta_services_pb2.ServicesReadLogsRequest(header=request_header(), service=service)
    output = session.output
    for reply in checked_replies(stub.ReadLogs(request), f"reading the log of service {service}"):
        if output.structured:
            for line in reply.logs:
                output.document({"service": reply.service_id, "line": line}, stream=True)
        else:
            sys.stdout.writelines(f"{line}\n" for line in reply.logs)
    sys.stdout.flush()
    return ExitCode.OK
