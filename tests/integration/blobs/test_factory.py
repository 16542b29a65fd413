"""`open_blob_store` picks the adapter `AORTA_BLOB_STORE` names, or says what is wrong with it."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aorta.blobs import open_blob_store
from aorta.blobs.local import LocalBlobStore
from aorta.blobs.s3 import S3BlobStore
from aorta.errors import Invalid, Unavailable
from aorta.settings import Settings, SettingsError
from aorta.testing.s3 import S3Server


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.mark.parametrize(
    ("environ", "folder"),
    [
        ({}, ".aorta/blobs"),
        ({"AORTA_DATA_DIR": "var"}, "var/blobs"),
        ({"AORTA_BLOB_STORE": "file:///data/blobs"}, "data/blobs"),
    ],
)
async def test_relative_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], folder: str
) -> None:
    monkeypatch.chdir(tmp_path)
    store = await open_blob_store(Settings.from_env(environ))
    try:
        assert isinstance(store, LocalBlobStore)
        assert store.root.resolve() == (tmp_path / folder).resolve()
    finally:
        await store.close()


async def test_an_absolute_folder(tmp_path: Path) -> None:
    settings = Settings.from_env({"AORTA_BLOB_STORE": f"file:///{tmp_path / 'abs'}"})
    store = await open_blob_store(settings)
    try:
        assert isinstance(store, LocalBlobStore)
        assert store.root == tmp_path / "abs"
        await store.put("k", chunks_of(b"v"))
        assert (tmp_path / "abs" / "k").read_bytes() == b"v"
    finally:
        await store.close()


async def test_an_s3_location(s3_server: S3Server) -> None:
    settings = Settings.from_env(
        {
            "AORTA_BLOB_STORE": "s3://aorta-factory/some/prefix",
            "AORTA_S3_ENDPOINT": s3_server.endpoint,
            "AORTA_S3_ACCESS_KEY": s3_server.access_key,
            "AORTA_S3_SECRET_KEY": s3_server.secret_key,
        }
    )
    store = await open_blob_store(settings)
    try:
        assert isinstance(store, S3BlobStore)
        info = await store.put("k", chunks_of(b"value"))
        assert info.size == 5
        assert b"".join([chunk async for chunk in store.get("k")]) == b"value"
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"AORTA_BLOB_STORE": "ftp://host/x"}, "AORTA_BLOB_STORE"),
        ({"AORTA_BLOB_STORE": "file://relative"}, "AORTA_BLOB_STORE"),
        ({"AORTA_BLOB_STORE": "file:///"}, "AORTA_BLOB_STORE"),
        ({"AORTA_BLOB_STORE": "s3://Bad_Bucket"}, "AORTA_BLOB_STORE"),
        ({"AORTA_BLOB_STORE": "s3://bucket/a//b"}, "AORTA_BLOB_STORE"),
        (
            {"AORTA_BLOB_STORE": "s3://bucket", "AORTA_S3_ENDPOINT": "http://minio:9000"},
            "AORTA_S3_ENDPOINT",
        ),
    ],
)
async def test_bad_settings_name_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named) as caught:
        await open_blob_store(Settings.from_env(environ))
    assert isinstance(caught.value, Invalid)


async def test_a_folder_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    settings = Settings.from_env({"AORTA_BLOB_STORE": f"file:///{tmp_path / 'file' / 'blobs'}"})
    with pytest.raises(SettingsError, match="AORTA_BLOB_STORE"):
        await open_blob_store(settings)


async def test_an_unreachable_endpoint() -> None:
    with socket.socket() as probe:  # bound, not listening: connections are refused
        probe.bind(("127.0.0.1", 0))
        endpoint = f"127.0.0.1:{probe.getsockname()[1]}"
        settings = Settings.from_env(
            {"AORTA_BLOB_STORE": "s3://bucket", "AORTA_S3_ENDPOINT": endpoint}
        )
        with pytest.raises(Unavailable, match=re.escape(endpoint)):
            await open_blob_store(settings)
