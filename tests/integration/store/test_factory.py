"""`open_state_store`: the adapter the settings name, and clear errors for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from aorta.settings import Settings, SettingsError
from aorta.store.factory import open_state_store
from aorta.store.mongo import MongoStateStore
from aorta.store.sqlite import SqliteStateStore


async def test_sqlite_urls_relative_absolute_and_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = await open_state_store(
        Settings.from_env({"AORTA_STATE_STORE": "sqlite:///data/deep/state.db"})
    )
    absolute = await open_state_store(
        Settings.from_env({"AORTA_STATE_STORE": f"sqlite:///{tmp_path / 'abs' / 'state.db'}"})
    )
    default = await open_state_store(Settings.from_env({"AORTA_DATA_DIR": str(tmp_path / "dd")}))
    try:
        assert isinstance(relative, SqliteStateStore)
        assert isinstance(absolute, SqliteStateStore)
        assert isinstance(default, SqliteStateStore)
        assert relative.path == Path("data/deep/state.db")
        assert absolute.path == tmp_path / "abs" / "state.db"
        assert default.path == tmp_path / "dd" / "state.db"
        await relative.collection("jobs").insert({"id": "j"})
        assert (tmp_path / "data" / "deep" / "state.db").is_file()
    finally:
        for store in (relative, absolute, default):
            await store.close()


async def test_mongodb_urls_make_a_lazy_motor_store() -> None:
    store = await open_state_store(
        Settings.from_env(
            {
                "AORTA_STATE_STORE": "mongodb://user:secret@127.0.0.1:1/?serverSelectionTimeoutMS=50",
                "AORTA_MONGODB_DATABASE": "aorta_prod",
            }
        )
    )
    assert isinstance(store, MongoStateStore)
    await store.close()


@pytest.mark.parametrize(
    ("environment", "variable"),
    [
        ({"AORTA_STATE_STORE": "postgres://user:secret@db/aorta"}, "AORTA_STATE_STORE"),
        ({"AORTA_STATE_STORE": "state.db"}, "AORTA_STATE_STORE"),
        ({"AORTA_STATE_STORE": "sqlite://state.db"}, "AORTA_STATE_STORE"),
        ({"AORTA_STATE_STORE": "sqlite:///"}, "AORTA_STATE_STORE"),
        ({"AORTA_STATE_STORE": "mongodb://user:secret@"}, "AORTA_STATE_STORE"),
        (
            {"AORTA_STATE_STORE": "mongodb://127.0.0.1", "AORTA_MONGODB_DATABASE": "a/b.c"},
            "AORTA_MONGODB_DATABASE",
        ),
    ],
)
async def test_bad_settings_name_the_variable_and_hide_secrets(
    environment: dict[str, str], variable: str
) -> None:
    with pytest.raises(SettingsError, match=variable) as caught:
        await open_state_store(Settings.from_env(environment))
    assert "secret" not in str(caught.value)
    assert caught.value.__cause__ is None
