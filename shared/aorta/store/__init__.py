"""The state store: documents with optimistic concurrency, over SQLite or MongoDB.

The port (`Collection`, `StateStore`, `Document`, `Sort`) is re-exported here; adapters live in
`aorta.store.sqlite` and `aorta.store.mongo`, and `aorta.store.factory.open_state_store` picks
one from the settings. `optimistic_update` (from `aorta.store.optimistic`) is the one retry
loop for a read-modify-write that lost a race, and `modify_document` the one read-change-write
of a document built on it. Importing this package loads no database driver.
"""

from aorta.store.optimistic import (
    document_turn,
    kept_changing,
    modify_document,
    optimistic_update,
)
from aorta.store.port import Collection, Document, Sort, StateStore

__all__ = [
    "Collection",
    "Document",
    "Sort",
    "StateStore",
    "document_turn",
    "kept_changing",
    "modify_document",
    "optimistic_update",
]
