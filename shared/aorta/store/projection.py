"""Chosen top-level fields of stored JSON documents, read without building the rest.

A listing reads a page of documents for a few of their fields (a List item needs a job's ids,
name, state, times and metadata, not its operators, timeline or outbox). `json.loads` builds
every object of a document before the fields are picked; a msgspec decoder for a struct of
just those fields skips the others while it scans, which takes a job's document from about
40 µs to 8 µs (the values kept are the same objects `json.loads` would build).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import msgspec

from aorta.store.port import Document

Projection = Callable[[str], Document]


def projection(fields: Sequence[str]) -> Projection:
    """A function from a document's JSON text to a dict of those of `fields` it holds, in the
    order of `fields`. `ValueError` for text that is not a JSON object."""
    return _projection(tuple(fields))


@lru_cache(maxsize=64)
def _projection(fields: tuple[str, ...]) -> Projection:
    # Struct attributes are named f0, f1, ... and renamed to the fields, which need not be
    # identifiers.
    names = [f"f{index}" for index in range(len(fields))]
    shape = msgspec.defstruct(
        "Projected",
        [(name, Any, msgspec.UNSET) for name in names],
        rename=dict(zip(names, fields, strict=True)),
    )
    decoder = msgspec.json.Decoder(shape)
    chosen = list(zip(names, fields, strict=True))

    def project(text: str) -> Document:
        try:
            found = decoder.decode(text)
        except msgspec.DecodeError as error:
            raise ValueError(f"not a stored document: {error}") from None
        return {
            field: value
            for name, field in chosen
            if (value := getattr(found, name)) is not msgspec.UNSET
        }

    return project
