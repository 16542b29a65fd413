"""A kustomize renderer for the subset `deploy/` uses, so the manifests render without kubectl.

Supported, with kustomize's meaning: `resources` (files of one or more YAML documents, and
folders holding a kustomization.yaml) and `patches` given by `path` (strategic-merge patches,
one or more documents, each finding its target by kind, name and namespace). The merge is
strategic merge restricted to what the patches here rely on: maps merge key by key, `null`
deletes a key, lists of maps whose items all carry `name` (containers, env, volumes, ports)
merge item by item on it (items only the patch has go first, as kubectl puts them), and every
other list is replaced. Any other kustomization field is an error, so a manifest that starts
using one fails the tests here rather than render wrongly.

Where kubectl is installed, the tests also render with `kubectl kustomize` and compare.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Json = dict[str, Any]
_SUPPORTED = {"apiVersion", "kind", "resources", "patches"}


def render(folder: Path) -> list[Json]:
    """The objects the kustomization in `folder` produces, in resource order."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(kustomization) - _SUPPORTED
    if unknown:
        raise ValueError(f"{folder}: kustomization fields this renderer does not know: {unknown}")
    objects: list[Json] = []
    for entry in kustomization.get("resources", []):
        path = folder / entry
        objects += render(path) if path.is_dir() else _documents(path)
    for patch in kustomization.get("patches", []):
        if set(patch) != {"path"}:
            raise ValueError(f"{folder}: only `path` patches are supported, not {patch}")
        for document in _documents(folder / patch["path"]):
            _merge(_target(objects, document, folder), document)
    seen: set[tuple[str, str, str]] = set()
    for obj in objects:
        key = _identity(obj)
        if key in seen:
            raise ValueError(f"{folder}: {key} is defined twice")
        seen.add(key)
    return objects


def _documents(path: Path) -> list[Json]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _identity(obj: Json) -> tuple[str, str, str]:
    metadata = obj.get("metadata", {})
    return obj["kind"], metadata.get("namespace", ""), metadata["name"]


def _target(objects: list[Json], patch: Json, folder: Path) -> Json:
    matches = [obj for obj in objects if _identity(obj) == _identity(patch)]
    if len(matches) != 1:
        raise ValueError(f"{folder}: patch {_identity(patch)} matches {len(matches)} objects")
    return matches[0]


def _merge(target: Json, patch: Json) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        elif isinstance(value, list) and _named(value) and _named(target.get(key)):
            by_name = {item["name"]: item for item in target[key]}
            added = []
            for item in value:
                if item["name"] in by_name:
                    _merge(by_name[item["name"]], item)
                else:
                    added.append(copy.deepcopy(item))
            # kubectl puts the items only the patch has before the target's own.
            target[key][:0] = added
        else:
            target[key] = copy.deepcopy(value)


def _named(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(i, dict) and "name" in i for i in value)
