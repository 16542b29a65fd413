"""Operator images: the pull policy, and registry credentials from a `config.json`-style file.

A pipeline's `pull-secrets` name entries of the file `AORTA_CONTAINER_AUTH_FILE` names (Docker's
`config.json` layout): `{"auths": {"<name>": {"auth": base64("user:password"),
"serveraddress": "nvcr.io"}}}`. An entry's registry is its `serveraddress`, else its name, so
the usual `config.json` written by `docker login` (entries named by registry) works as it is, and
a Clara pipeline's `pull-secrets: [ngc-clara]` finds the entry `ngc-clara`. The credentials of
the first named entry whose registry is the image's are sent (as `X-Registry-Auth`); without a
named one, the entry named by the image's registry, if any. Credentials never reach a log line
or an error message.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from aorta.errors import Invalid, NotFound
from aorta.executors.container.settings import PullPolicy
from aorta.logger import get_logger

DOCKER_HUB = "docker.io"
_HUB_ALIASES = frozenset({"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"})

_log = get_logger(__name__)


class ImageStore(Protocol):
    """What pulling needs of the engine (`aorta.executors.container.engine.ContainerEngine`)."""

    async def image_present(self, reference: str) -> bool: ...

    async def pull(self, reference: str, credentials: Mapping[str, str] | None) -> None: ...


def registry_of(reference: str) -> str:
    """The registry an image reference names (Docker's rule: a first component with a `.` or
    `:`, or `localhost`), `docker.io` when it names none."""
    first, slash, _ = reference.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return _normal_registry(first)
    return DOCKER_HUB


def credentials_for(
    config: Mapping[str, Any], reference: str, secrets: Sequence[str]
) -> dict[str, str] | None:
    """The credentials for pulling `reference` from a parsed `config.json` (module docstring),
    as the Docker API's auth configuration (`username`/`password` or `identitytoken`, and
    `serveraddress`); None when no entry applies. `NotFound` for a named secret the file
    lacks, `Invalid` for an entry whose credentials cannot be read (neither names them)."""
    auths = config.get("auths")
    if not isinstance(auths, Mapping):
        auths = {}
    registry = registry_of(reference)
    for name in secrets:
        entry = auths.get(name)
        if not isinstance(entry, Mapping):
            raise NotFound(f"pull secret {name!r} is not in the registry credentials file")
        if _entry_registry(name, entry) == registry:
            return _credentials(name, entry, registry)
    for key, entry in auths.items():
        if isinstance(entry, Mapping) and _normal_registry(str(key)) == registry:
            return _credentials(str(key), entry, registry)
    return None


async def read_auth_file(path: Path) -> dict[str, Any]:
    """The parsed file; `Invalid` when it cannot be read or is not a JSON object (the message
    names the file, never its content)."""
    try:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        config = json.loads(text)
    except (OSError, ValueError) as error:
        why = error.strerror if isinstance(error, OSError) else "it is not valid JSON"
        raise Invalid(f"the registry credentials file {path} cannot be read: {why}") from None
    if not isinstance(config, dict):
        raise Invalid(f"the registry credentials file {path} is not a JSON object")
    return config


async def ensure_image(
    engine: ImageStore,
    reference: str,
    *,
    policy: PullPolicy,
    auth_file: Path | None,
    secrets: Sequence[str],
) -> None:
    """Makes `reference` present in the engine as `policy` says, pulling it with the
    credentials `secrets` select. Raises `NotFound` (absent under `Never`, or a named secret
    missing) and the engine's errors (a refused pull, bad credentials) with the image named."""
    if policy is not PullPolicy.ALWAYS and await engine.image_present(reference):
        return
    if policy is PullPolicy.NEVER:
        raise NotFound(
            f"image {reference} is not in the container engine's storage and the pull policy "
            "is Never (AORTA_CONTAINER_PULL_POLICY): build or load it first"
        )
    credentials = None
    if auth_file is not None:
        credentials = credentials_for(await read_auth_file(auth_file), reference, secrets)
    elif secrets:
        raise NotFound(
            f"the pipeline names pull secrets ({', '.join(secrets)}) but no registry "
            "credentials file is set (AORTA_CONTAINER_AUTH_FILE)"
        )
    _log.info("pulling image", image=reference, authenticated=credentials is not None)
    await engine.pull(reference, credentials)


def _entry_registry(name: str, entry: Mapping[str, Any]) -> str:
    return _normal_registry(str(entry.get("serveraddress") or name))


def _credentials(name: str, entry: Mapping[str, Any], registry: str) -> dict[str, str]:
    if entry.get("identitytoken"):
        return {"identitytoken": str(entry["identitytoken"]), "serveraddress": registry}
    username, password = entry.get("username"), entry.get("password")
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"]), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        username, _, password = decoded.partition(":")
    if not username or password is None:
        raise Invalid(
            f"registry credentials {name!r} hold no user and password (an `auth` of "
            "base64 user:password, or `username` and `password`)"
        )
    return {"username": str(username), "password": str(password), "serveraddress": registry}


def _normal_registry(address: str) -> str:
    """`https://index.docker.io/v1/` -> `docker.io`, `https://nvcr.io` -> `nvcr.io`."""
    host = address.split("://", 1)[-1].split("/", 1)[0].lower()
    return DOCKER_HUB if host in _HUB_ALIASES else host
