"""A run's work folder on the host: where each of its folders lies (no I/O).

    <work_root>/<job_id>/<operator>-<attempt>/
        volumes/<declared path>   one folder per declared input and output (`/input` ->
                                  `volumes/input`), given to the operator as its entry paths
        home/  tmp/               the operator's HOME and TMPDIR
        operator.log              its captured stdout and stderr
        leader.status             how the group leader saw the command end

Declared paths are mirrored under `volumes/` so a person looking at a kept workspace finds each
folder under the name the definition gave it. Who owns each folder on a host is
`aorta.executors.local.work_folders`'s business. `aorta.executors.transfers` creates and removes
the folders and moves bytes between them and the blob store; the Kubernetes agent lays its
volumes out the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from aorta import ids
from aorta.errors import Invalid
from aorta.executors.port import VolumeBinding
from aorta.operator_env import validate_name


@dataclass(frozen=True)
class Workspace:
    """The folders of one run (see the module docstring)."""

    folder: Path

    @classmethod
    def for_run(cls, work_root: Path, job_id: str, operator: str, attempt: int) -> Workspace:
        """The workspace of one attempt; `Invalid` for ids that could escape `work_root`."""
        job = ids.job_id(job_id)
        validate_name(operator, what="operator name")
        if attempt < 0:
            raise Invalid(f"attempt {attempt} is negative")
        return cls(Path(work_root).absolute() / job / f"{operator}-{attempt}")

    @property
    def home(self) -> Path:
        return self.folder / "home"

    @property
    def tmp(self) -> Path:
        return self.folder / "tmp"

    @property
    def log_file(self) -> Path:
        return self.folder / "operator.log"

    @property
    def status_file(self) -> Path:
        return self.folder / "leader.status"

    def volume(self, declared: str) -> Path:
        """The host folder of a declared path; `Invalid` unless it is rooted and plain."""
        return self.folder.joinpath(*self.volume_parts(declared))

    def volume_parts(self, declared: str) -> tuple[str, ...]:
        """The names leading from `folder` to the host folder of a declared path."""
        return ("volumes", *_declared_parts(declared))


def check_bindings(bindings: Iterable[VolumeBinding]) -> None:
    """`Invalid` when a declared path is not rooted and plain, or lies inside another one, or
    when a blob prefix is not a folder (`.../`)."""
    bindings = list(bindings)
    for binding in bindings:
        if not binding.blob_prefix.endswith("/"):
            raise Invalid(
                f"blob prefix {binding.blob_prefix!r} of {binding.entry_name!r} does not end "
                "with '/'"
            )
    _check_no_overlap([binding.path for binding in bindings])


def _declared_parts(declared: str) -> tuple[str, ...]:
    path = PurePosixPath(declared)
    parts = path.parts[1:]
    if not path.is_absolute() or not parts or any(p in {".", ".."} for p in declared.split("/")):
        raise Invalid(f"path {declared!r} is not a rooted folder such as /input")
    return parts


def _check_no_overlap(declared: list[str]) -> None:
    seen: dict[tuple[str, ...], str] = {}
    for path in declared:
        parts = _declared_parts(path)
        for other_parts, other in seen.items():
            shorter = min(len(parts), len(other_parts))
            if parts[:shorter] == other_parts[:shorter]:
                raise Invalid(
                    f"paths {other!r} and {path!r} overlap: each input and output needs a "
                    "folder of its own"
                )
        seen[parts] = path
