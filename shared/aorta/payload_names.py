"""Payload file names: what an upload may be called, and which file a download or removal means.

Two kinds of names cross the Payloads API (docs/clara-compatibility.md, "Payload names and
upload chunks"):

- **Upload names** (`Payloads.Upload`, `details.name`) are relative to the payload's `input/`
  folder: `scan.dcm`, `series-1/0001.dcm`. `check_upload_name` accepts a relative POSIX path
  and nothing else, so an upload can never land outside `input/`: no absolute path, no `.` or
  `..` segment, no empty segment (`a//b`, a trailing `/`), no backslash (a Windows separator
  here would silently become part of a file name), no NUL or other control character, at most
  `MAX_NAME_BYTES` bytes in all and `MAX_SEGMENT_BYTES` per segment (UTF-8). One leading `./` is
  dropped, as shells write it. Names keep their case.
- **Lookup names** (`Download`, `Remove`) are relative to the payload root, as `Details` prints
  them: `/input/scan.dcm`, `./operators/seg/mask.nii` and `input/scan.dcm` name one file.
  `lookup_name` drops the root and checks the rest by the same rules; `resolve` then picks the
  file: an exact match wins; else the one file whose name matches ignoring case; several such
  files are an error asking for the exact name. A name that matches nothing at the root is
  looked up once more below `input/`, so a client may download a file by the name it uploaded.

A file's SHA-256 travels in success headers (Clara's messages have no field for it) as the line
`sha256 <hex> <name>`, the name rooted as `Details` prints it: `checksum_line` writes one,
`checksums` reads them back.

Every refusal is `Invalid` with PAYLOAD_FILE_NAME_INVALID (or `NotFound` with
PAYLOAD_FILE_NOT_FOUND from `resolve`) and a message saying what to change. The gateway and
the payloads service apply these rules; a client (the CLI) may check names with them before it
sends anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from aorta.errors import ErrorCode, Invalid, NotFound
from aorta.payload_layout import INPUT_FOLDER, input_key, payload_prefix
from aorta.relative_paths import segment_problem, text_problem

MAX_KEY_BYTES = 1024
"""The blob stores' key limit (`aorta.blobs.keys`, S3's), repeated so that clients checking
names need not import the blob stores."""
_SOME_ID = "0" * 32
MAX_NAME_BYTES = MAX_KEY_BYTES - len(input_key(_SOME_ID, ""))
"""Longest upload name (UTF-8 bytes): what a blob key leaves after `payloads/<id>/input/`."""
MAX_LOOKUP_BYTES = MAX_KEY_BYTES - len(payload_prefix(_SOME_ID))
"""Longest lookup name without its root: what a blob key leaves after `payloads/<id>/`."""
MAX_SEGMENT_BYTES = 255
"""Longest file or folder name within a path: what nearly every filesystem allows."""

_SHOWN = 80
_CHECKSUM_PREFIX = "sha256 "
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CODE = ErrorCode.PAYLOAD_FILE_NAME_INVALID


def check_upload_name(name: str) -> str:
    """The name, relative to `input/`, under which an upload named `name` is stored.

    Raises `Invalid` (PAYLOAD_FILE_NAME_INVALID) saying why when `name` is not a relative POSIX
    path that stays inside the input folder (see the module docstring).
    """
    if name.startswith("/"):
        raise _invalid(
            name,
            "it is an absolute path; upload names are relative to the payload's input folder "
            "(drop the leading '/')",
        )
    relative = name[2:] if name.startswith("./") else name
    problem = _problem(relative, MAX_NAME_BYTES)
    if problem:
        raise _invalid(name, problem)
    return relative


def lookup_name(name: str) -> str:
    """`name` relative to the payload root: without a leading `./` or `/`, otherwise checked
    like an upload name; `Invalid` (PAYLOAD_FILE_NAME_INVALID) saying why."""
    relative = name[2:] if name.startswith("./") else name
    relative = relative.lstrip("/")
    if relative:
        problem = _problem(relative, MAX_LOOKUP_BYTES)
    else:
        problem = "it names no file (give a name such as /input/scan.dcm)"
    if problem:
        raise _invalid(name, problem)
    return relative


def resolve(payload_id: str, wanted: str, names: Iterable[str]) -> str:
    """The one name of `names` that the lookup name `wanted` means (both relative to the root).

    Tried in order: `wanted` itself, then `input/<wanted>`; at each step an exact match wins,
    else a single match ignoring case. `NotFound` (PAYLOAD_FILE_NOT_FOUND) when several names
    match ignoring case and none exactly (it lists them), or when nothing matches (saying so
    when `wanted` is a folder).
    """
    known = list(names)
    candidates = (wanted, f"{INPUT_FOLDER}/{wanted}")
    for candidate in candidates:
        if candidate in known:
            return candidate
        folded = candidate.casefold()
        matches = [name for name in known if name.casefold() == folded]
        if len(matches) == 1:
            return matches[0]
        if matches:
            listed = ", ".join(repr("/" + match) for match in sorted(matches))
            raise NotFound(
                f"payload {payload_id} has several files named {_shown('/' + candidate)} when "
                f"case is ignored ({listed}); give the exact name",
                code=ErrorCode.PAYLOAD_FILE_NOT_FOUND,
            )
    for candidate in candidates:
        inside = [name for name in known if name.startswith(candidate + "/")]
        if inside:
            raise NotFound(
                f"{_shown('/' + candidate)} is a folder of payload {payload_id}, not a file; "
                f"name one of its files, such as {_shown('/' + inside[0])}",
                code=ErrorCode.PAYLOAD_FILE_NOT_FOUND,
            )
    raise NotFound(
        f"payload {payload_id} has no file named {_shown(wanted)}",
        code=ErrorCode.PAYLOAD_FILE_NOT_FOUND,
    )


def checksum_line(sha256: str, wire_name: str) -> str:
    """The header line that gives a file's checksum: `sha256 <hex> <name>`."""
    return f"{_CHECKSUM_PREFIX}{sha256} {wire_name}"


def checksums(messages: Iterable[str]) -> dict[str, str]:
    """The checksums (name -> lowercase hex) that `checksum_line` lines among `messages` give;
    other messages are ignored."""
    found: dict[str, str] = {}
    for message in messages:
        if message.startswith(_CHECKSUM_PREFIX):
            digest, separator, name = message[len(_CHECKSUM_PREFIX) :].partition(" ")
            if separator and name and _SHA256.fullmatch(digest):
                found[name] = digest
    return found


def _problem(name: str, max_bytes: int) -> str | None:
    problem = text_problem(name, max_bytes)
    if problem is not None:
        return problem
    if "\\" in name:
        return "it contains a backslash; separate folders with '/'"
    for segment in name.split("/"):
        problem = segment_problem(segment, MAX_SEGMENT_BYTES)
        if problem is not None:
            escaping = segment in {".", ".."}
            return problem + ("; names must stay inside the payload" if escaping else "")
    return None


def _invalid(name: str, problem: str) -> Invalid:
    return Invalid(f"file name {_shown(name)} is not valid: {problem}", code=_CODE)


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "...")
