"""Operator `services` (deprecated since Clara 0.7.1) and their `connections`.

Read for compatibility: a Triton service with an `http` connection is how pre-0.7.2 pipelines
reached their models. Connection names become environment variables of the operator, so two
connections of one operator may not share a name; service names are unique per operator.
An `http` port, when given, is 1024 to 65535 (Clara advised leaving it out).
"""

from __future__ import annotations

from aorta.pipeline_spec.diagnostics import DEFINITION, Mark
from aorta.pipeline_spec.fields import Reader
from aorta.pipeline_spec.model import Connections, HttpConnection, ServiceSpec, VolumeConnection
from aorta.pipeline_spec.parts import (
    present,
    read_container,
    read_requests,
    read_variables,
    read_version,
)
from aorta.pipeline_spec.vocabulary import (
    CONNECTIONS,
    HTTP_CONNECTION,
    SERVICE,
    VOLUME_CONNECTION,
)
from aorta.pipeline_spec.yaml_nodes import Map, Node

MIN_PORT = 1024
MAX_PORT = 65535


def read_services(node: Node, owner: str, reader: Reader) -> tuple[ServiceSpec, ...]:
    """The services of operator `owner`, each checked; duplicates reported."""
    listed = reader.sequence(node, f"`services` of {owner}")
    if listed is None:
        return ()
    services: list[ServiceSpec] = []
    names: dict[str, Mark] = {}
    connections: dict[str, Mark] = {}
    for index, item in enumerate(listed.items):
        mapping = reader.mapping(item, f"service #{index + 1} of {owner}")
        if mapping is None:
            continue
        service = _service(mapping, index, owner, reader, connections)
        if service is None:
            continue
        first = names.get(service.name.lower())
        if first is not None:
            reader.report.error(
                mapping.mark,
                f"{owner} has two services named {service.name!r} (also at line {first.line})",
                DEFINITION,
            )
        names.setdefault(service.name.lower(), mapping.mark)
        services.append(service)
    return tuple(services)


def _service(
    node: Map, index: int, owner: str, reader: Reader, seen: dict[str, Mark]
) -> ServiceSpec | None:
    label = f"service #{index + 1} of {owner}"
    name_node = reader.require(node, "name", label, SERVICE)
    name = reader.name(name_node, f"the name of {label}") if name_node is not None else None
    if name is not None:
        label = f"service {name!r} of {owner}"
    reader.keys(node, SERVICE, label)
    version = present(node.get("api-version"))
    if version is not None:
        read_version(version, f"`api-version` of {label}", reader)
    description = present(node.get("description"))
    if description is not None:
        reader.text(description, f"`description` of {label}")
    container_node = reader.require(node, "container", label, SERVICE)
    if container_node is None or name is None:
        return None
    container = read_container(container_node, label, reader, SERVICE)
    requests = read_requests(node.get("requests"), label, reader)
    variables = read_variables(node.get("variables"), label, reader)
    connections = _connections(node.get("connections"), label, reader, seen)
    return ServiceSpec(name, container, requests, variables, connections)


def _connections(
    node: Node | None, owner: str, reader: Reader, seen: dict[str, Mark]
) -> Connections:
    node = present(node)
    if node is None:
        return Connections()
    what = f"`connections` of {owner}"
    mapping = reader.mapping(node, what)
    if mapping is None:
        return Connections()
    reader.keys(mapping, CONNECTIONS, what)
    http: list[HttpConnection] = []
    volume: list[VolumeConnection] = []
    for kind in CONNECTIONS.keys:
        listed_node = present(mapping.get(kind))
        listed = (
            reader.sequence(listed_node, f"`connections.{kind}` of {owner}")
            if listed_node
            else None
        )
        for item in listed.items if listed is not None else ():
            label = f"{'an' if kind == 'http' else 'a'} `{kind}` connection of {owner}"
            entry = reader.mapping(item, label)
            if entry is None:
                continue
            place = HTTP_CONNECTION if kind == "http" else VOLUME_CONNECTION
            reader.keys(entry, place, label)
            name_node = reader.require(entry, "name", label, place)
            name = reader.name(name_node, f"the name of {label}") if name_node else None
            if name is None:
                continue
            _unique(name, entry.mark, owner, reader, seen)
            if kind == "http":
                port_node = present(entry.get("port"))
                port = (
                    reader.integer(port_node, f"the port of {label}", low=MIN_PORT, high=MAX_PORT)
                    if port_node is not None
                    else None
                )
                http.append(HttpConnection(name, port))
                continue
            path_node = reader.require(entry, "path", label, place)
            path = reader.path(path_node, label) if path_node else None
            if path is not None:
                volume.append(VolumeConnection(name, path))
    return Connections(tuple(http), tuple(volume))


def _unique(name: str, mark: Mark, owner: str, reader: Reader, seen: dict[str, Mark]) -> None:
    first = seen.get(name.lower())
    if first is not None:
        reader.report.error(
            mark,
            f"connection {name!r} of {owner} is already declared at line {first.line}: each "
            "becomes an environment variable of the operator",
            DEFINITION,
        )
        return
    seen[name.lower()] = mark
