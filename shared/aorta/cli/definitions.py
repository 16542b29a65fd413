"""A pipeline definition and the files it imports, as one `Pipelines.Create`/`Update` stream.

The root file is sent first under its own name; each `import` item's `path` (anywhere in the
document: operators, an operator's services, in either spelling `import: PATH` or
`import: {path: PATH}`) is relative to the file it is written in, and the file is sent under
that path joined to its importer's, so the server resolves it exactly as it would on disk. A
file that does not parse as YAML is still sent: the server reports the error with its line.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from aorta.api import common_pb2, pipelines_pb2
from aorta.cli.connection import request_header
from aorta.cli.failures import UsageFailure
from aorta.cli.files import CHUNK_SIZE, text_chunks


@dataclass(frozen=True)
class DefinitionFile:
    """One file of a definition: the path it is sent under and its text."""

    path: str
    text: str


def _read(local: Path) -> str:
    try:
        return local.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageFailure(f"{local} is not UTF-8 text: {exc.reason}") from exc


def imports_of(text: str) -> list[str]:
    """The import paths a YAML document names, in document order; [] if it does not parse."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return []
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            spec = node.get("import")
            if isinstance(spec, str):
                found.append(spec)
            elif isinstance(spec, dict) and isinstance(spec.get("path"), str):
                found.append(spec["path"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(document)
    return found


def collect_definition(root: Path) -> list[DefinitionFile]:
    """The root file and every file it imports, transitively, each once.

    Rooted import paths are left for the server to refuse. A relative import whose file does
    not exist is a `UsageFailure` naming the importing file.
    """
    first = DefinitionFile(root.name, _read(root))
    files = [first]
    seen = {first.path.lower()}
    pending = [(first, root)]
    while pending:
        current, local = pending.pop(0)
        for imported in imports_of(current.text):
            if imported.startswith("/"):
                continue
            path = posixpath.normpath(posixpath.join(posixpath.dirname(current.path), imported))
            if path.lower() in seen:
                continue
            target = local.parent / imported
            if not target.is_file():
                raise UsageFailure(f"{local} imports {imported!r}, but {target} does not exist")
            seen.add(path.lower())
            found = DefinitionFile(path, _read(target))
            files.append(found)
            pending.append((found, target))
    return files


def create_requests(
    files: Sequence[DefinitionFile],
    metadata: Sequence[tuple[str, str]] = (),
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[pipelines_pb2.PipelinesCreateRequest]:
    """The `Pipelines.Create` stream: header and metadata first, then each file's chunks, all
    chunks of a file with the same `path`."""
    first = True
    for definition in files:
        for piece in text_chunks(definition.text, chunk_size):
            request = pipelines_pb2.PipelinesCreateRequest(
                definition=pipelines_pb2.PipelineDefinitionFile(path=definition.path, content=piece)
            )
            if first:
                request.header.CopyFrom(request_header())
                for key, value in metadata:
                    request.metadata[key] = value
                first = False
            yield request


def update_requests(
    pipeline_id: str, files: Sequence[DefinitionFile], chunk_size: int = CHUNK_SIZE
) -> Iterator[pipelines_pb2.PipelinesUpdateRequest]:
    """The `Pipelines.Update` stream: like Create, with the pipeline id in every message."""
    first = True
    for definition in files:
        for piece in text_chunks(definition.text, chunk_size):
            request = pipelines_pb2.PipelinesUpdateRequest(
                pipeline_id=common_pb2.Identifier(value=pipeline_id),
                definition=pipelines_pb2.PipelineDefinitionFile(
                    path=definition.path, content=piece
                ),
            )
            if first:
                request.header.CopyFrom(request_header())
                first = False
            yield request


def pipeline_name(files: Sequence[DefinitionFile]) -> str | None:
    """The root document's `name`, if it parses and has one."""
    try:
        document = yaml.safe_load(files[0].text)
    except yaml.YAMLError:
        return None
    name = document.get("name") if isinstance(document, dict) else None
    return name if isinstance(name, str) and name else None
