"""`S3Server`: a moto_server child that starts, answers, resets, stops, and says why it did not."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from minio import Minio

from aorta.testing import s3 as s3_testing
from aorta.testing.s3 import S3Server, S3ServerError


def client(server: S3Server) -> Minio:
    return Minio(
        server.endpoint,
        access_key=server.access_key,
        secret_key=server.secret_key,
        secure=False,
        region=server.region,
    )


def test_reset_forgets_every_bucket(s3_server: S3Server) -> None:
    minio = client(s3_server)
    minio.make_bucket("aorta-reset-check")
    assert minio.bucket_exists("aorta-reset-check")

    s3_server.reset()

    assert not minio.bucket_exists("aorta-reset-check")


async def test_async_use_starts_and_stops(tmp_path: Path) -> None:
    server = S3Server(tmp_path / "moto")
    async with server:
        assert server.endpoint.startswith("127.0.0.1:")
        assert server.log_file == tmp_path / "moto" / "moto_server.log"
    with pytest.raises(S3ServerError, match="not running"):
        server.endpoint  # noqa: B018
    server.stop()  # idempotent


def fake_server(tmp_path: Path, script: str) -> str:
    path = tmp_path / "fake_moto_server"
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_a_server_that_exits_is_reported_with_its_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = fake_server(tmp_path, "echo 'address already taken' >&2\nexit 3")
    monkeypatch.setattr(s3_testing, "find_moto_server", lambda: binary)

    with pytest.raises(S3ServerError, match="exited with code 3") as caught:
        S3Server().start()
    assert "address already taken" in "\n".join(caught.value.messages)


def test_a_server_that_never_answers_times_out_and_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "pid"
    binary = fake_server(tmp_path, f"echo $$ > {pid_file}\necho 'stuck' >&2\nexec sleep 60")
    monkeypatch.setattr(s3_testing, "find_moto_server", lambda: binary)

    with pytest.raises(S3ServerError, match=r"did not answer within 0\.5 s") as caught:
        S3Server(start_timeout=0.5).start()
    assert "stuck" in "\n".join(caught.value.messages)
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)
