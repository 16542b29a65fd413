"""The parts operators and services share: container, requests, variables, api-version.

Decisions where Clara is silent:

- `api-version` 0.3.0 to 0.7.0 are read by their own rules. `0.7.N` and `0.8.N` spellings are
  read by the 0.7.0 rules with a warning: the 0.8.x documentation names no newer grammar, and a
  newer key would only be reported as unknown. `0.4` (a YAML number) is not a version.
- `command` given as one text instead of a list is split like a shell would (quotes kept
  together), with a warning; Clara documented a list.
- An image that names its tag (`reader:0.8.1`) or digest (`reader@sha256:...`) keeps it;
  naming it in `image` and in `tag` as well is an error. `hostVolumePath` (seen in one
  third-party pipeline, undocumented) is ignored with a warning.
- `variables` names are environment variable names: not empty, no `=`, no spaces.
"""

from __future__ import annotations

import re
import shlex

from aorta.pipeline_spec.diagnostics import DEFINITION
from aorta.pipeline_spec.fields import Reader
from aorta.pipeline_spec.model import (
    DEFAULT_CPU,
    DEFAULT_GPU,
    DEFAULT_MEMORY_MB,
    MAX_TIMEOUT,
    Container,
    Requests,
)
from aorta.pipeline_spec.templates import PLACEHOLDER
from aorta.pipeline_spec.vocabulary import CONTAINER, REQUESTS, Place
from aorta.pipeline_spec.yaml_nodes import Node, Scalar, Seq, shown

SUPPORTED_API_VERSIONS = ("0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0")
"""The api-versions read by their own rules (later 0.7.x/0.8.x spellings read as 0.7.0)."""
NEWEST_GRAMMAR = (0, 7, 0)
_LATER_SPELLING = re.compile(r"^0\.[78]\.[0-9]{1,4}$")


Grammar = tuple[int, int, int]


def present(node: Node | None) -> Node | None:
    """`node`, or None when it is absent or an explicit null (an empty optional section)."""
    if node is None or (isinstance(node, Scalar) and node.is_null):
        return None
    return node


def read_version(node: Node, what: str, reader: Reader) -> tuple[str, Grammar] | None:
    """The api-version as written and the grammar it is read with."""
    value = reader.text(node, what)
    if value is None:
        return None
    if value in SUPPORTED_API_VERSIONS:
        major, minor, patch = (int(part) for part in value.split("."))
        return value, (major, minor, patch)
    if _LATER_SPELLING.match(value):
        reader.report.warning(
            node.mark, f"{what} {value} is read by the rules of 0.7.0, the newest Aorta knows"
        )
        return value, NEWEST_GRAMMAR
    reader.report.error(
        node.mark,
        f"{what} {shown(value)} is not supported; use one of {', '.join(SUPPORTED_API_VERSIONS)} "
        "(three numbers, e.g. `api-version: 0.4.0`)",
    )
    return None


def read_container(node: Node, owner: str, reader: Reader, inside: Place) -> Container:
    """The `container` of `owner` (an operator or a service, as `inside` says); unreadable
    parts are reported and left empty."""
    what = f"`container` of {owner}"
    mapping = reader.mapping(node, what)
    if mapping is None:
        return Container("")
    reader.keys(mapping, CONTAINER, what, inside)
    host_volume = mapping.key("hostVolumePath")
    if host_volume is not None:
        reader.report.warning(
            host_volume.mark, f"{what}: `hostVolumePath` is not supported and is ignored"
        )
    image_node = reader.require(mapping, "image", what, CONTAINER)
    image = reader.text(image_node, f"the image of {owner}") if image_node is not None else None
    if image_node is None or image is None:
        return Container("")
    fixed = not (isinstance(image_node, Scalar) and reader.templated(image_node))
    if fixed and (not image.strip() or any(c.isspace() for c in image)):
        reader.report.error(
            image_node.mark, f"the image of {owner} {shown(image)} is not an image name", DEFINITION
        )
    tag_node = present(mapping.get("tag"))
    tag = None if tag_node is None else reader.text(tag_node, f"the tag of {owner}")
    image, tag = _split_image(image, tag, image_node, owner, reader)
    command_node = present(mapping.get("command"))
    command = () if command_node is None else _command(command_node, owner, reader)
    return Container(image, tag, command)


def read_requests(node: Node | None, owner: str, reader: Reader) -> Requests:
    """The `requests` of `owner`, defaults filled in."""
    node = present(node)
    if node is None:
        return Requests()
    what = f"`requests` of {owner}"
    mapping = reader.mapping(node, what)
    if mapping is None:
        return Requests()
    reader.keys(mapping, REQUESTS, what)
    values: dict[str, int | str] = {
        "cpu": DEFAULT_CPU,
        "gpu": DEFAULT_GPU,
        "memory": DEFAULT_MEMORY_MB,
    }
    for key in REQUESTS.keys:
        value = mapping.get(key)
        if value is not None:
            number = reader.integer(value, f"`requests.{key}` of {owner}", low=0)
            if number is not None:
                values[key] = number
    return Requests(values["cpu"], values["gpu"], values["memory"])


def read_variables(node: Node | None, owner: str, reader: Reader) -> dict[str, str]:
    """The `variables` of `owner`: environment variable name -> value."""
    node = present(node)
    if node is None:
        return {}
    return reader.text_map(node, f"`variables` of {owner}", key_problem=_env_problem) or {}


def read_timeout(node: Node | None, owner: str, reader: Reader) -> int | str | None:
    """A `timeout` in whole seconds, 1 to `MAX_TIMEOUT`; None when not given."""
    node = present(node)
    if node is None:
        return None
    return reader.integer(node, f"`timeout` of {owner} (seconds)", low=1, high=MAX_TIMEOUT)


def _env_problem(name: str) -> str | None:
    if not name:
        return "is empty"
    if "=" in name or any(c.isspace() or not c.isprintable() for c in name):
        return "is not an environment variable name (no '=', spaces or control characters)"
    return None


def _split_image(
    image: str, tag: str | None, node: Node, owner: str, reader: Reader
) -> tuple[str, str]:
    named: str | None = None
    if "@" in image:
        named = ""
        plain = image
    elif ":" in image.rsplit("/", 1)[-1]:
        plain, _, named = image.rpartition(":")
    else:
        plain = image
    if named is None:
        return image, "latest" if tag is None else tag
    if tag is not None:
        reader.report.error(
            node.mark,
            f"the image of {owner} {shown(image)} already names its "
            f"{'digest' if named == '' else 'tag'}; remove it there or remove `tag`",
            DEFINITION,
        )
    return plain, named


def _command(node: Node, owner: str, reader: Reader) -> tuple[str, ...]:
    what = f"`container.command` of {owner}"
    if isinstance(node, Seq) or not isinstance(node, Scalar):
        return reader.text_list(node, what) or ()
    # Placeholders may hold spaces (`${{ A }}`); close them up so splitting keeps them whole.
    text = PLACEHOLDER.sub(lambda match: "${{" + match.group(1) + "}}", node.value)
    try:
        parts = tuple(shlex.split(text))
    except ValueError as exc:
        reader.report.error(
            node.mark, f"{what} cannot be split into words ({exc}); write it as a list"
        )
        return ()
    reader.report.warning(node.mark, f"{what} should be a list; read as {list(parts)}")
    return parts
