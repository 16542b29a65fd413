"""The native group leader is used only when nobody but root or the platform's user can change
it: a root platform starts it as root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aorta.executors.local.process_group import native_leader


@pytest.fixture
def binary(tmp_path: Path) -> Path:
    folder = tmp_path / "leader"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    path = folder / "group_leader"
    path.write_bytes(b"\x7fELF")
    path.chmod(0o755)
    return path


def test_an_executable_only_its_owner_may_change_is_used(binary: Path) -> None:
    assert native_leader(binary) == binary


def test_a_missing_or_not_executable_leader_is_not_used(binary: Path) -> None:
    assert native_leader(binary.with_name("missing")) is None
    binary.chmod(0o644)
    assert native_leader(binary) is None
    assert native_leader(binary.parent) is None  # a folder


@pytest.mark.parametrize("mode", [0o775, 0o757])
def test_a_leader_others_may_write_is_not_used(binary: Path, mode: int) -> None:
    binary.chmod(mode)
    assert native_leader(binary) is None


@pytest.mark.parametrize("mode", [0o775, 0o777, 0o1777])
def test_a_leader_in_a_folder_others_may_write_is_not_used(binary: Path, mode: int) -> None:
    binary.parent.chmod(mode)
    assert native_leader(binary) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
def test_a_leader_owned_by_another_user_is_not_used(binary: Path) -> None:
    os.chown(binary, 12345, -1)
    assert native_leader(binary) is None
    os.chown(binary, 0, -1)
    os.chown(binary.parent, 12345, -1)
    assert native_leader(binary) is None
