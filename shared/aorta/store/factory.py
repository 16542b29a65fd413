"""Chooses and opens the state store a process's settings name (`AORTA_STATE_STORE`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aorta.errors import Invalid
from aorta.settings import Settings, SettingsError
from aorta.store.port import StateStore
from aorta.store.sqlite import SqliteStateStore


async def open_state_store(settings: Settings) -> StateStore:
    """The store for `settings.state_store`; the caller closes it.

    - `sqlite:///PATH`: SQLite at PATH (relative to the working directory; `sqlite:////abs`
      for an absolute one), creating its folder.
    - `mongodb://...` or `mongodb+srv://...`: MongoDB through motor, database
      `settings.mongodb_database`; the client connects on first use.

    `SettingsError` (an `Invalid`) naming the variable for any other value; its message never
    repeats the URL, which may hold a password. `Unavailable` when the SQLite file cannot be
    opened.
    """
    scheme, separator, rest = settings.state_store.partition("://")
    if separator and scheme == "sqlite":
        if not rest.startswith("/") or len(rest) < 2:
            raise SettingsError(
                "setting AORTA_STATE_STORE must be sqlite:///PATH (three slashes, then the path)"
            )
        path = Path(rest[1:])
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        return await SqliteStateStore.open(path)
    if separator and scheme in ("mongodb", "mongodb+srv"):
        # Imported here so that processes on SQLite never load motor and pymongo.
        from aorta.store.mongo import MongoStateStore, check_database_name

        try:
            check_database_name(settings.mongodb_database)
        except Invalid as error:
            raise SettingsError(f"setting AORTA_MONGODB_DATABASE: {error}") from None
        try:
            return MongoStateStore.connect(settings.state_store, settings.mongodb_database)
        except Invalid as error:
            raise SettingsError(f"setting AORTA_STATE_STORE: {error}") from None
    shown = f"{scheme}://" if separator else "a value without a scheme"
    raise SettingsError(
        f"setting AORTA_STATE_STORE has {shown}; use sqlite:///PATH, mongodb:// or mongodb+srv://"
    )
