"""Payload file names: what an upload may be called, and which file a lookup name means."""

from __future__ import annotations

import pytest

from aorta import payload_names
from aorta.blobs import keys
from aorta.errors import ErrorCode, Invalid, NotFound
from aorta.payload_layout import input_key
from aorta.payload_names import (
    MAX_LOOKUP_BYTES,
    MAX_NAME_BYTES,
    MAX_SEGMENT_BYTES,
    check_upload_name,
    checksum_line,
    checksums,
    lookup_name,
    resolve,
)

PAYLOAD = "0123456789abcdef0123456789abcdef"
DIGEST = "ab" * 32


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("scan.dcm", "scan.dcm"),
        ("series-1/0001.dcm", "series-1/0001.dcm"),
        ("./scan.dcm", "scan.dcm"),
        ("Upper/Case.DCM", "Upper/Case.DCM"),
        ("with space/é.nii.gz", "with space/é.nii.gz"),
        ("..hidden/.dotfile", "..hidden/.dotfile"),
        ("x" * MAX_SEGMENT_BYTES, "x" * MAX_SEGMENT_BYTES),
    ],
)
def test_relative_posix_names_are_accepted(name: str, stored: str) -> None:
    assert check_upload_name(name) == stored


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "it is empty"),
        ("./", "it is empty"),
        ("/etc/passwd", "absolute path"),
        ("../outside", "'..' path segment"),
        ("a/../../outside", "'..' path segment"),
        ("a/./b", "'.' path segment"),
        (".", "'.' path segment"),
        ("a//b", "empty path segment"),
        ("folder/", "empty path segment"),
        ("././a", "'.' path segment"),
        ("a\\..\\b", "backslash"),
        ("nul\x00byte", "control character"),
        ("new\nline", "control character"),
        ("bell\x07", "control character"),
        ("x" * (MAX_SEGMENT_BYTES + 1), "longer than 255 bytes"),
        ("a/" * 500 + "b", f"more than the {MAX_NAME_BYTES} allowed"),
        ("lone\udc80surrogate", "not valid Unicode"),
    ],
)
def test_names_escaping_or_malformed_are_refused(name: str, reason: str) -> None:
    with pytest.raises(Invalid) as caught:
        check_upload_name(name)
    assert caught.value.code == ErrorCode.PAYLOAD_FILE_NAME_INVALID
    assert reason in str(caught.value)
    assert "is not valid" in str(caught.value)


def test_the_longest_accepted_name_still_makes_a_blob_key() -> None:
    name = "/".join(["y" * 200] * 4) + "/" + "z" * (MAX_NAME_BYTES - 804)
    assert len(name.encode()) == MAX_NAME_BYTES
    assert len(input_key(PAYLOAD, check_upload_name(name)).encode()) == 1024
    with pytest.raises(Invalid):
        check_upload_name(name + "z")


def test_the_key_limit_is_the_blob_stores() -> None:
    assert payload_names.MAX_KEY_BYTES == keys.MAX_KEY_BYTES


def test_multibyte_names_are_measured_in_utf8_bytes() -> None:
    check_upload_name("é" * (MAX_SEGMENT_BYTES // 2))
    with pytest.raises(Invalid, match="longer than 255 bytes"):
        check_upload_name("é" * (MAX_SEGMENT_BYTES // 2 + 1))


@pytest.mark.parametrize(
    "name", ["/input/a.dcm", "./input/a.dcm", "input/a.dcm", "//input/a.dcm", ".//input/a.dcm"]
)
def test_lookup_names_drop_their_root(name: str) -> None:
    assert lookup_name(name) == "input/a.dcm"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("/", "names no file"),
        ("./", "names no file"),
        ("/input/../../x", "'..' path segment"),
        ("/input//x", "empty path segment"),
        ("/input\\x", "backslash"),
        ("/input/\x00", "control character"),
    ],
)
def test_bad_lookup_names_are_refused(name: str, reason: str) -> None:
    with pytest.raises(Invalid, match=reason) as caught:
        lookup_name(name)
    assert caught.value.code == ErrorCode.PAYLOAD_FILE_NAME_INVALID


def test_lookup_names_may_be_longer_than_upload_names() -> None:
    segments = ["operators", "o" * 250, "p" * 250, "q" * 250]
    used = sum(len(segment) + 1 for segment in segments)
    operator_output = "/".join([*segments, "f" * (MAX_LOOKUP_BYTES - used)])
    assert len(operator_output) == MAX_LOOKUP_BYTES > MAX_NAME_BYTES
    assert lookup_name("/" + operator_output) == operator_output
    with pytest.raises(Invalid):
        lookup_name("/" + operator_output + "f")


NAMES = [
    "input/a.dcm",
    "input/Case.txt",
    "input/case.TXT",
    "input/series/1.dcm",
    "input/series/2.dcm",
    "operators/seg/mask.nii",
]


@pytest.mark.parametrize(
    ("wanted", "found"),
    [
        ("input/a.dcm", "input/a.dcm"),
        ("INPUT/A.DCM", "input/a.dcm"),
        ("input/Case.txt", "input/Case.txt"),
        ("input/case.TXT", "input/case.TXT"),
        ("operators/seg/mask.nii", "operators/seg/mask.nii"),
        ("Operators/SEG/mask.NII", "operators/seg/mask.nii"),
        ("a.dcm", "input/a.dcm"),
        ("A.dcm", "input/a.dcm"),
        ("series/2.dcm", "input/series/2.dcm"),
    ],
)
def test_resolution_prefers_exact_then_single_case_insensitive(wanted: str, found: str) -> None:
    assert resolve(PAYLOAD, wanted, NAMES) == found


def test_several_case_insensitive_matches_without_an_exact_one_are_an_error() -> None:
    with pytest.raises(NotFound) as caught:
        resolve(PAYLOAD, "input/CASE.txt", NAMES)
    assert caught.value.code == ErrorCode.PAYLOAD_FILE_NOT_FOUND
    message = str(caught.value)
    assert "'/input/Case.txt', '/input/case.TXT'" in message
    assert "give the exact name" in message


def test_a_root_match_wins_over_the_input_fallback() -> None:
    names = ["input/operators/seg/mask.nii", "operators/seg/mask.nii"]
    assert resolve(PAYLOAD, "operators/seg/mask.nii", names) == "operators/seg/mask.nii"
    assert resolve(PAYLOAD, "operators/seg/mask.nii", names[:1]) == names[0]


def test_a_folder_is_not_a_file() -> None:
    with pytest.raises(NotFound, match="'/input/series' is a folder") as caught:
        resolve(PAYLOAD, "input/series", NAMES)
    assert "'/input/series/1.dcm'" in str(caught.value)


def test_nothing_matching_names_the_payload_and_the_file() -> None:
    with pytest.raises(NotFound) as caught:
        resolve(PAYLOAD, "input/missing.dcm", NAMES)
    assert caught.value.code == ErrorCode.PAYLOAD_FILE_NOT_FOUND
    assert str(caught.value) == f"payload {PAYLOAD} has no file named 'input/missing.dcm'"


def test_checksum_lines_round_trip_and_other_messages_are_ignored() -> None:
    lines = [
        checksum_line(DIGEST, "/input/a b.dcm"),
        "a warning",
        "sha256 nothex /input/x",
        "sha256 " + "cd" * 32,
        checksum_line("ef" * 32, "/input/c"),
    ]
    assert lines[0] == f"sha256 {DIGEST} /input/a b.dcm"
    assert checksums(lines) == {"/input/a b.dcm": DIGEST, "/input/c": "ef" * 32}
