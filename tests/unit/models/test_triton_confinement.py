"""What confines a local tritonserver: its environment holds none of the platform's variables, it
starts as the Triton user with no supplementary group, and what it reads is opened read-only."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aorta.errors import Unavailable
from aorta.executors.local.operator_user import OperatorUser, OperatorUserMissing
from aorta.settings import SettingsError
from aorta.triton.local.confinement import open_to_server, resolve_triton_user, server_environment
from aorta.triton.local.install import TritonInstall
from aorta.triton.local.process import TritonProcess
from aorta.triton.server_flags import device_environment

PLATFORM = {
    "PATH": "/opt/platform/bin:/usr/bin",
    "AORTA_S3_SECRET_KEY": "secret",
    "AORTA_BUS_PASSWORD": "secret",
    "AWS_SECRET_ACCESS_KEY": "secret",
    "VIRTUAL_ENV": "/opt/platform",
    "LANG": "C.UTF-8",
    "LD_LIBRARY_PATH": "/usr/local/cuda/lib64",
}
TRITON_USER = OperatorUser("aorta-triton", 995, 994, switch=True)


def install(tmp_path: Path) -> TritonInstall:
    return TritonInstall(
        binary=tmp_path / "bin" / "tritonserver",
        backends=tmp_path / "backends",
        stub=None,
        libraries=(tmp_path / "libs",),
        interpreter_bin=Path(sys.executable).parent,
    )


def test_the_environment_is_built_from_nothing_but_the_install_devices_home_and_locale(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    environment = server_environment(install(tmp_path), device_environment([1]), home, PLATFORM)
    assert environment == {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "LD_LIBRARY_PATH": f"{tmp_path / 'libs'}:/usr/local/cuda/lib64",
        "HOME": str(home),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "CUDA_VISIBLE_DEVICES": "1",
    }


def test_a_server_process_keeps_no_platform_variable(tmp_path: Path) -> None:
    server = TritonProcess(
        install(tmp_path),
        repository=tmp_path / "repository",
        backends=tmp_path / "backends",
        log_file=tmp_path / "logs" / "s1.log",
        environ=PLATFORM,
        user=TRITON_USER,
        home=tmp_path / "home",
    )
    assert set(server.environment) == {
        "PATH",
        "LD_LIBRARY_PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "CUDA_DEVICE_ORDER",
        "CUDA_VISIBLE_DEVICES",
    }
    assert "secret" not in server.environment.values()


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        (TRITON_USER, {"user": 995, "group": 994, "extra_groups": []}),
        (OperatorUser("root", 0, 0, switch=False), {}),
    ],
)
async def test_the_server_starts_as_the_user_it_switches_to_and_no_other_group(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    user: OperatorUser,
    expected: dict[str, Any],
) -> None:
    seen: dict[str, Any] = {}

    def spawn(command: list[str], **options: Any) -> subprocess.Popen[bytes]:
        seen.update(options)
        raise OSError("not started in a unit test")

    monkeypatch.setattr(subprocess, "Popen", spawn)
    server = TritonProcess(
        install(tmp_path),
        repository=tmp_path / "repository",
        backends=tmp_path / "backends",
        log_file=tmp_path / "logs" / "s1.log",
        environ=PLATFORM,
        user=user,
    )
    with pytest.raises(Unavailable, match="not started in a unit test"):
        await server.start()
    ids = {name: seen[name] for name in ("user", "group", "extra_groups") if name in seen}
    assert ids == expected
    assert seen["env"] == server.environment


def test_a_root_platform_runs_its_servers_as_the_user_the_setting_names() -> None:
    assert resolve_triton_user("0:0", euid=0, egid=0).switch is False
    assert resolve_triton_user("4242:4243", euid=0, egid=0) == OperatorUser(
        "4242", 4242, 4243, switch=True
    )
    assert resolve_triton_user("", euid=1000, egid=1000).switch is False


def test_a_missing_or_malformed_triton_user_names_its_setting() -> None:
    with pytest.raises(OperatorUserMissing, match=r"AORTA_TRITON_RUN_AS.*aorta-triton"):
        resolve_triton_user("no-such-aorta-user", euid=0, egid=0)
    with pytest.raises(SettingsError, match="AORTA_TRITON_RUN_AS"):
        resolve_triton_user("name:group", euid=0, egid=0)


def test_what_the_server_reads_is_opened_read_only(tmp_path: Path) -> None:
    model = tmp_path / "model"
    (model / "1").mkdir(parents=True, mode=0o700)
    (model / "1" / "model.py").write_text("")
    (model / "1" / "model.py").chmod(0o600)
    (model / "run.sh").write_text("")
    (model / "run.sh").chmod(0o700)
    open_to_server(model)
    modes = {
        path.relative_to(tmp_path).as_posix(): stat.S_IMODE(path.stat().st_mode)
        for path in (model, model / "1", model / "1" / "model.py", model / "run.sh")
    }
    assert modes == {
        "model": 0o755,
        "model/1": 0o755,
        "model/1/model.py": 0o644,
        "model/run.sh": 0o755,
    }
