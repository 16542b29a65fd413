"""`ProcEnvironOwners` over a hand-made /proc tree: the odd cases a live system rarely shows."""

from __future__ import annotations

from pathlib import Path

from aorta.gpu import ProcEnvironOwners, ProcessOwner
from aorta.ids import JobId

JOB = "0123456789ABCDEF0123456789ABCDEF"


def process(
    root: Path, pid: int, ppid: int, environ: dict[str, str] | None, comm: str = "x"
) -> None:
    folder = root / str(pid)
    folder.mkdir()
    (folder / "stat").write_text(f"{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560\n")
    if environ is not None:
        entries = [f"{key}={value}".encode() for key, value in environ.items()]
        (folder / "environ").write_bytes(b"\0".join(entries) + b"\0")


def owned(operator: str = "segment") -> dict[str, str]:
    return {"PATH": "/usr/bin", "NVIDIA_CLARA_JOBID": JOB, "NVIDIA_CLARA_STAGENAME": operator}


def test_own_environment_then_ancestors(tmp_path: Path) -> None:
    process(tmp_path, 1, 0, {})
    process(tmp_path, 10, 1, owned())
    process(tmp_path, 11, 10, {"PATH": "/bin"})
    process(tmp_path, 12, 11, None, comm="odd ) name (")  # environ unreadable
    owners = ProcEnvironOwners(tmp_path)
    expected = ProcessOwner(job_id=JobId(JOB.lower()), operator="segment")
    assert owners.owner_of(10) == expected
    assert owners.owner_of(12) == expected
    assert owners.owner_of(1) is None


def test_vanished_processes_and_broken_files_end_the_walk(tmp_path: Path) -> None:
    process(tmp_path, 20, 19, {})  # parent 19 is gone
    process(tmp_path, 21, 20, {})
    (tmp_path / "22").mkdir()  # exists but its files are gone
    process(tmp_path, 23, 22, {})
    process(tmp_path, 24, 1, {})
    (tmp_path / "24" / "stat").write_text("garbage")
    owners = ProcEnvironOwners(tmp_path)
    assert [owners.owner_of(pid) for pid in (21, 23, 24, 999)] == [None] * 4


def test_a_parent_cycle_or_a_deep_chain_stops(tmp_path: Path) -> None:
    process(tmp_path, 30, 31, {})
    process(tmp_path, 31, 30, {})
    for pid in range(100, 140):
        process(tmp_path, pid, pid - 1 if pid > 100 else 2, {})
    process(tmp_path, 2, 0, owned())
    owners = ProcEnvironOwners(tmp_path, max_depth=8)
    assert owners.owner_of(30) is None
    assert owners.owner_of(105) is not None
    assert owners.owner_of(139) is None  # the owner is too far up


def test_incomplete_or_foreign_variables_are_not_a_job(tmp_path: Path) -> None:
    process(tmp_path, 40, 0, {"NVIDIA_CLARA_JOBID": JOB})
    process(tmp_path, 41, 0, {"NVIDIA_CLARA_STAGENAME": "op"})
    process(tmp_path, 42, 0, {"NVIDIA_CLARA_JOBID": "my-local-job", "NVIDIA_CLARA_STAGENAME": "op"})
    process(tmp_path, 43, 0, {"NVIDIA_CLARA_JOBID": "", "NVIDIA_CLARA_STAGENAME": "op"})
    owners = ProcEnvironOwners(tmp_path)
    assert [owners.owner_of(pid) for pid in (40, 41, 42, 43)] == [None] * 4


async def test_batch_lookup_leaves_out_what_no_job_owns(tmp_path: Path) -> None:
    process(tmp_path, 50, 0, owned("a"))
    process(tmp_path, 51, 0, {})
    owners = ProcEnvironOwners(tmp_path)
    found = await owners.owners([50, 51, 52])
    assert found == {50: ProcessOwner(job_id=JobId(JOB.lower()), operator="a")}
    assert await owners.owners([]) == {}
