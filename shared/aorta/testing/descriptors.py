"""Describe protobuf files as plain JSON, and list how two such descriptions differ.

The wire-compatibility test runs `describe_files` twice: here on our `aorta.api` descriptors,
and in NVIDIA's client virtualenv on theirs (that side cannot be imported into our process).
So this module must import nothing but the standard library and `google.protobuf`'s descriptor
API as it exists in both protobuf 3.20 and 7.x; `module_source` hands its text to the other
interpreter. Everything is keyed by full proto names, never file names, because the two sides
keep their .proto files at different paths.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import (
    Descriptor,
    EnumValueDescriptor,
    FileDescriptor,
    ServiceDescriptor,
)

JsonObject = dict[str, Any]

_FieldProto = descriptor_pb2.FieldDescriptorProto
# Repeated fields of these types are never packed; other repeated scalars are, in proto3.
_UNPACKABLE = frozenset(
    {
        _FieldProto.TYPE_STRING,
        _FieldProto.TYPE_BYTES,
        _FieldProto.TYPE_MESSAGE,
        _FieldProto.TYPE_GROUP,
    }
)


def module_source() -> str:
    """This module's source text, to run in another interpreter (with `run_clara_python`)."""
    return Path(__file__).read_text(encoding="utf-8")


def describe_files(files: Iterable[FileDescriptor]) -> JsonObject:
    """Describe every service, message (nested ones included) and enum of `files`.

    The result is JSON-serialisable: `{"services": ..., "messages": ..., "enums": ...}`, each a
    mapping from full name to a description. Labels and types are read from the descriptor
    protos rather than descriptor attributes, because protobuf 7 dropped `FieldDescriptor.label`.
    """
    described: JsonObject = {"services": {}, "messages": {}, "enums": {}}
    for file in files:
        file_proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(file_proto)
        syntax = file_proto.syntax or "proto2"
        for service in file.services_by_name.values():
            described["services"][service.full_name] = _describe_service(service)
        for enum in file.enum_types_by_name.values():
            described["enums"][enum.full_name] = _describe_enum_values(enum.values)
        for message in file.message_types_by_name.values():
            _describe_message(message, syntax, described)
    return described


def _describe_service(service: ServiceDescriptor) -> JsonObject:
    proto = descriptor_pb2.ServiceDescriptorProto()
    service.CopyToProto(proto)
    return {
        "methods": {
            method.name: {
                "input_type": method.input_type.full_name,
                "output_type": method.output_type.full_name,
                "client_streaming": method_proto.client_streaming,
                "server_streaming": method_proto.server_streaming,
            }
            for method, method_proto in zip(service.methods, proto.method, strict=True)
        }
    }


def _describe_enum_values(values: Iterable[EnumValueDescriptor]) -> JsonObject:
    return {"values": {value.name: value.number for value in values}}


def _describe_message(message: Descriptor, syntax: str, described: JsonObject) -> None:
    proto = descriptor_pb2.DescriptorProto()
    message.CopyToProto(proto)
    fields: JsonObject = {}
    for field, field_proto in zip(message.fields, proto.field, strict=True):
        repeated = field_proto.label == _FieldProto.LABEL_REPEATED
        if field_proto.options.HasField("packed"):
            packed = field_proto.options.packed
        else:
            packed = syntax == "proto3" and repeated and field_proto.type not in _UNPACKABLE
        fields[field.name] = {
            "number": field_proto.number,
            "type": _FieldProto.Type.Name(field_proto.type),
            "label": _FieldProto.Label.Name(field_proto.label),
            "type_name": field_proto.type_name.lstrip(".") or None,
            "json_name": field.json_name,
            "oneof": field.containing_oneof.name if field.containing_oneof else None,
            "packed": packed,
            "deprecated": field_proto.options.deprecated,
        }
    described["messages"][message.full_name] = {
        "fields": fields,
        "map_entry": proto.options.map_entry,
        "oneofs": sorted(oneof.name for oneof in message.oneofs),
    }
    for enum in message.enum_types:
        described["enums"][enum.full_name] = _describe_enum_values(enum.values)
    for nested in message.nested_types:
        _describe_message(nested, syntax, described)


def differences(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """Every way `actual` departs from `expected`, one readable line each; empty when equal.

    Both are `describe_files` results. Lines name the element, for example
    `message nvidia.clara.platform.JobsStartRequest: field Variables: number: expected 3, got 4`
    or `service nvidia.clara.platform.Jobs: method Cancel: missing` (missing from `actual`;
    `unexpected` for the reverse).
    """
    lines: list[str] = []
    _compare_attributes([], expected, actual, lines)
    return lines


# Keys whose value maps names to descriptions, and what one such name is called in a line.
_NAMED_CHILDREN = {
    "services": "service",
    "messages": "message",
    "enums": "enum",
    "methods": "method",
    "fields": "field",
    "values": "value",
}


def _compare_attributes(path: list[str], expected: Any, actual: Any, lines: list[str]) -> None:
    if not (isinstance(expected, Mapping) and isinstance(actual, Mapping)):
        if expected != actual:
            lines.append(_line(path, f"expected {expected!r}, got {actual!r}"))
        return
    for key in sorted(set(expected) | set(actual)):
        if key in _NAMED_CHILDREN:
            kind = _NAMED_CHILDREN[key]
            _compare_named(path, kind, expected.get(key, {}), actual.get(key, {}), lines)
        elif expected.get(key) != actual.get(key):
            _compare_attributes([*path, key], expected.get(key), actual.get(key), lines)


def _compare_named(
    path: list[str],
    kind: str,
    expected: Mapping[str, Any],
    actual: Mapping[str, Any],
    lines: list[str],
) -> None:
    for name in sorted(set(expected) | set(actual)):
        where = [*path, f"{kind} {name}"]
        if name not in actual:
            lines.append(_line(where, "missing"))
        elif name not in expected:
            lines.append(_line(where, "unexpected"))
        else:
            _compare_attributes(where, expected[name], actual[name], lines)


def _line(path: list[str], what: str) -> str:
    return ": ".join([*path, what])
