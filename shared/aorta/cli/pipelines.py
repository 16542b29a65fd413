"""`aorta create|update|list|describe|delete pipeline`.

A registered pipeline is named by id, unique id prefix or name (`aorta.cli.lookup`), as a
positional argument or through Clara's `-p`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Group, RenderableType
from rich.text import Text

from aorta.api import common_pb2, pipelines_pb2
from aorta.auth.ownership import owner_from_metadata
from aorta.cli import dag as dags
from aorta.cli.connection import UNARY_TIMEOUT, check, checked_replies, request_header
from aorta.cli.definitions import collect_definition, create_requests, update_requests
from aorta.cli.humanize import NOT_SET
from aorta.cli.lookup import named
from aorta.cli.lookup import pipeline_id as resolve_pipeline
from aorta.cli.output import key_values, table
from aorta.cli.params import KEY_VALUE
from aorta.cli.session import Session, with_session

_DEFINITION = click.Path(exists=True, dir_okay=False, path_type=Path)


def create(session: Session, definition: Path, metadata: Sequence[tuple[str, str]] = ()) -> str:
    """Sends `definition` and its imports with `Pipelines.Create`; returns the pipeline id."""
    files = collect_definition(definition)
    response = session.platform.pipelines.Create(
        create_requests(files, metadata), timeout=UNARY_TIMEOUT
    )
    check(response, f"creating a pipeline from {definition}")
    _warn(session, response.header.messages)
    return response.pipeline_id.value


def _warn(session: Session, messages: Sequence[str]) -> None:
    """Prints the warnings of an accepted definition (a successful header's messages, each
    `file:line:col: warning: text`) on stderr as `warning: file:line:col: text`."""
    for message in messages:
        where, marker, text = message.partition(": warning: ")
        session.output.warning(f"{where}: {text}" if marker else message)


@click.command("pipeline")
@click.option(
    "-p",
    "--pipeline",
    "definition",
    type=_DEFINITION,
    required=True,
    help="The pipeline definition (YAML); the files it imports are sent with it.",
)
@click.option("--metadata", type=KEY_VALUE, multiple=True, help="key=value (repeatable).")
@with_session()
def create_pipeline(
    session: Session, definition: Path, metadata: tuple[tuple[str, str], ...]
) -> None:
    """Register a pipeline definition; prints PIPELINE_ID:<id>."""
    pipeline_id = create(session, definition, metadata)
    session.output.emit(
        human=f"PIPELINE_ID:{pipeline_id}",
        document={"pipeline_id": pipeline_id},
        ids=[pipeline_id],
        kind="pipeline",
    )


@click.command("pipeline")
@named("pipeline", "-p", "--pipeline", dest="pipeline")
@click.option(
    "-f",
    "--file",
    "definition",
    type=_DEFINITION,
    required=True,
    help="The new definition (YAML); the files it imports are sent with it.",
)
@with_session()
def update_pipeline(session: Session, pipeline: str, definition: Path) -> None:
    """Replace a pipeline's definition."""
    pipeline_id = resolve_pipeline(session, pipeline)
    files = collect_definition(definition)
    response = session.platform.pipelines.Update(
        update_requests(pipeline_id, files), timeout=UNARY_TIMEOUT
    )
    check(response, f"updating pipeline {pipeline_id}")
    _warn(session, response.header.messages)
    session.output.emit(
        human=f"Pipeline {pipeline_id} updated from {definition}.",
        document={"pipeline_id": pipeline_id, "updated": True},
        ids=[pipeline_id],
        kind="pipeline",
    )


@click.command("pipeline")
@with_session()
def list_pipelines(session: Session) -> None:
    """List the registered pipelines, oldest first.

    -o wide adds each one's creator, number of operators and metadata (one more call per
    pipeline).
    """
    request = pipelines_pb2.PipelinesListRequest(header=request_header())
    found: list[dict[str, Any]] = []
    for response in checked_replies(session.platform.pipelines.List(request), "listing pipelines"):
        details = response.details
        if details.pipeline_id.value:
            found.append(
                {
                    "pipeline_id": details.pipeline_id.value,
                    "name": details.name,
                    "metadata": dict(details.metadata),
                }
            )
    session.output.emit(
        human=table(["PIPELINE ID", "NAME"], [(p["pipeline_id"], p["name"]) for p in found]),
        wide=_wide(session, found) if session.output.wide else None,
        document=found,
        ids=[p["pipeline_id"] for p in found],
        kind="pipeline",
    )


def _wide(session: Session, found: list[dict[str, Any]]) -> RenderableType:
    rows = []
    for pipeline in found:
        document, dag = details(session, pipeline["pipeline_id"])
        metadata = ", ".join(f"{k}={v}" for k, v in sorted(pipeline["metadata"].items()))
        rows.append(
            (
                pipeline["pipeline_id"],
                pipeline["name"],
                document["created_by"] or NOT_SET,
                str(len(dag.nodes)),
                metadata or NOT_SET,
            )
        )
    return table(["PIPELINE ID", "NAME", "CREATED BY", "OPERATORS", "METADATA"], rows)


def details(session: Session, pipeline_id: str) -> tuple[dict[str, Any], dags.Dag]:
    """`Pipelines.Details` as a JSON-able document (with `created_by`, the pipeline's creator
    when the platform names it), and the DAG it describes."""
    request = pipelines_pb2.PipelinesDetailsRequest(
        header=request_header(), pipeline_id=common_pb2.Identifier(value=pipeline_id)
    )
    name = ""
    metadata: dict[str, str] = {}
    files: dict[str, str] = {}
    nodes: list[pipelines_pb2.PipelinesDetailsResponse.PipelineDagNode] = []
    stream = session.platform.pipelines.Details(request)
    for response in checked_replies(stream, f"describing pipeline {pipeline_id}"):
        name = name or response.name
        metadata.update(response.metadata)
        nodes.extend(response.dag)
        if response.HasField("definition"):
            # A long definition may be spread over several messages, joined by path as in Create.
            path = response.definition.path
            files[path] = files.get(path, "") + response.definition.content
    dag = dags.from_pipeline(nodes)
    document = {
        "pipeline_id": pipeline_id,
        "name": name,
        "created_by": owner_from_metadata(stream.initial_metadata()) or None,
        "metadata": metadata,
        "definition": [{"path": path, "content": text} for path, text in files.items()],
        "dag": {"operators": dag.nodes, "edges": [list(edge) for edge in dag.edges()]},
    }
    return document, dag


@click.command("pipeline")
@named("pipeline", "-p", "--pipeline", dest="pipeline")
@with_session(quiet=False)
def describe_pipeline(session: Session, pipeline: str) -> None:
    """Show a pipeline: name, metadata, its DAG as a tree, and its definition."""
    pipeline_id = resolve_pipeline(session, pipeline)
    document, dag = details(session, pipeline_id)
    pairs = [("name", document["name"]), ("id", pipeline_id)]
    if document["created_by"]:
        pairs.append(("created by", document["created_by"]))
    pairs += [(f"metadata.{key}", value) for key, value in sorted(document["metadata"].items())]
    parts: list[RenderableType] = [
        key_values(pairs),
        dags.tree(dag, Text("operators", style="bold"), Text),
    ]
    for definition in document["definition"]:
        parts.append(Text(f"definition: {definition['path']}", style="bold"))
        parts.append(Text(definition["content"].rstrip("\n")))
    session.output.emit(human=Group(*parts), document=document, ids=[pipeline_id], kind="pipeline")


@click.command("pipeline")
@named("pipeline", "-p", "--pipeline", dest="pipeline")
@with_session()
def delete_pipeline(session: Session, pipeline: str) -> None:
    """Remove a pipeline."""
    pipeline_id = resolve_pipeline(session, pipeline)
    request = pipelines_pb2.PipelinesRemoveRequest(
        header=request_header(), pipeline_id=common_pb2.Identifier(value=pipeline_id)
    )
    response = session.platform.pipelines.Remove(request, timeout=UNARY_TIMEOUT)
    check(response, f"deleting pipeline {pipeline_id}")
    session.output.emit(
        human=f"Pipeline {pipeline_id} deleted.",
        document={"pipeline_id": pipeline_id, "deleted": True},
        ids=[pipeline_id],
        kind="pipeline",
    )
