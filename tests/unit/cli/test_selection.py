"""Download patterns: which payload files they select and where each one lands."""

from __future__ import annotations

from pathlib import Path

import pytest

from aorta.cli.failures import UsageFailure
from aorta.cli.selection import (
    EVERYTHING,
    base_of,
    matches,
    normalize,
    select,
    split_clara_source,
)

FILES = [
    ("/input/scan.dcm", 10),
    ("/operators/seg/mask.nii", 20),
    ("/operators/seg/extra/log.txt", 30),
    ("/operators/writer/out.dcm", 40),
]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("./operators/x", "/operators/x"), ("operators//x/", "/operators/x"), ("/a", "/a")],
)
def test_names_are_normalized_to_the_rooted_form(name: str, expected: str) -> None:
    assert normalize(name) == expected


@pytest.mark.parametrize(
    ("pattern", "selected"),
    [
        ("/operators/seg/*", ["/operators/seg/extra/log.txt", "/operators/seg/mask.nii"]),
        ("operators/seg", ["/operators/seg/extra/log.txt", "/operators/seg/mask.nii"]),
        ("/operators/*/*.dcm", ["/operators/writer/out.dcm"]),
        ("/**/*.txt", ["/operators/seg/extra/log.txt"]),
        ("/operators/s?g/mask.nii", ["/operators/seg/mask.nii"]),
        ("/operators/SEG/*", []),
        (EVERYTHING, [name for name, _ in FILES]),
        ("/", [name for name, _ in FILES]),
    ],
)
def test_patterns_select_files_and_whole_folders(pattern: str, selected: list[str]) -> None:
    assert sorted(name for name, _ in FILES if matches(pattern, name)) == sorted(selected)


@pytest.mark.parametrize(
    ("pattern", "base"),
    [
        ("/operators/seg/*", "/operators/seg"),
        ("/operators/seg", "/operators"),
        ("/operators/seg/mask.nii", "/operators/seg"),
        ("/operators/*/x", "/operators"),
        (EVERYTHING, "/"),
    ],
)
def test_the_base_is_the_folder_before_the_first_wildcard(pattern: str, base: str) -> None:
    assert str(base_of(pattern)) == base


def test_files_keep_their_structure_below_the_base(tmp_path: Path) -> None:
    chosen = select(FILES, "/operators/seg/*", tmp_path)
    assert [(s.name, s.size, s.target) for s in chosen] == [
        ("/operators/seg/extra/log.txt", 30, tmp_path / "extra" / "log.txt"),
        ("/operators/seg/mask.nii", 20, tmp_path / "mask.nii"),
    ]
    [everything_first] = select(FILES[:1], EVERYTHING, tmp_path)
    assert everything_first.target == tmp_path / "input" / "scan.dcm"
    [folder] = select(FILES[1:2], "/operators/seg", tmp_path)
    assert folder.target == tmp_path / "seg" / "mask.nii"


def test_a_name_that_climbs_out_of_the_destination_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageFailure, match="leaves the destination"):
        select([("/operators/../../etc/passwd", 1)], EVERYTHING, tmp_path)


def test_clara_s_job_colon_path_form_is_recognised() -> None:
    job = "3fd032fc" * 4
    assert split_clara_source(f"{job}:/operators/seg/*") == (job, "/operators/seg/*")
    dashed = "3fd032fc-3fd0-32fc-3fd0-32fc3fd032fc"
    assert split_clara_source(f"{dashed}:") == (dashed.replace("-", ""), EVERYTHING)
    assert split_clara_source("/operators/seg/*") is None
    assert split_clara_source("notanid:/x") is None
