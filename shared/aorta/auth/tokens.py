"""The tokens file: who may call the platform with a bearer token, and with which roles.

The file (`AORTA_AUTH_TOKENS_FILE`, by default `<data dir>/tokens.yaml`) is YAML:

```yaml
tokens:
- name: ci-robot
  sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
  roles: [user]
  created: "2026-01-05T10:00:00.000000Z"
```

Only each token's SHA-256 is kept, never the token: whoever reads the file cannot call the
platform with what they read. Tokens are random (256 bits), so a plain SHA-256 suffices; a
slow password hash would only slow every request. `aorta token create` prints a token once.
The gateway re-reads the file when it changes, so a created or revoked token takes effect
without a restart.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from aorta.auth.principal import Principal, Role
from aorta.auth.private_files import private_directory, write_private
from aorta.errors import Invalid, NotFound
from aorta.timestamps import to_iso, utcnow

TOKEN_PREFIX = "aorta_"
"""Every token starts with this, so leak scanners and people recognise one."""

TOKENS_FILE_VARIABLE = "AORTA_AUTH_TOKENS_FILE"
TOKENS_FILE_NAME = "tokens.yaml"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class TokensFileInvalid(Invalid):
    """The tokens file cannot be read as one; the message names the file, never a token."""


@dataclass(frozen=True)
class TokenEntry:
    """One token of the file: its name (the subject of its calls), digest, roles and birth."""

    name: str
    sha256: str
    roles: frozenset[Role]
    created: str

    def document(self) -> dict[str, Any]:
        """The entry as stored in the file."""
        return {
            "name": self.name,
            "sha256": self.sha256,
            "roles": sorted(role.value for role in self.roles),
            "created": self.created,
        }


def default_data_dir(environ: Mapping[str, str]) -> Path:
    """The folder `aorta up` keeps its state in: `AORTA_DATA_DIR`, else
    `$XDG_DATA_HOME/aorta`, else `~/.local/share/aorta`."""
    chosen = environ.get("AORTA_DATA_DIR")
    if chosen:
        return Path(chosen).expanduser()
    root = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(root) / "aorta"


def default_tokens_file(environ: Mapping[str, str]) -> Path:
    """The tokens file: `AORTA_AUTH_TOKENS_FILE`, else `tokens.yaml` in the data dir."""
    chosen = environ.get(TOKENS_FILE_VARIABLE)
    if chosen:
        return Path(chosen).expanduser()
    return default_data_dir(environ) / TOKENS_FILE_NAME


def digest(token: str) -> str:
    """The SHA-256 hex digest the file keeps of `token`."""
    return hashlib.sha256(token.encode()).hexdigest()


def read_tokens(path: Path) -> list[TokenEntry]:
    """The entries of the tokens file at `path`; [] when there is no file.

    A file that is not a tokens file raises `TokensFileInvalid` naming the file and the entry.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise TokensFileInvalid(f"tokens file {path}: {exc.strerror}") from exc
    return _parse(text, path)


def _parse(text: str, path: Path) -> list[TokenEntry]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # The YAML error quotes the offending line, which may hold a token pasted by mistake.
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise TokensFileInvalid(f"tokens file {path} is not valid YAML{where}") from None
    if document is None:
        return []
    items = (document.get("tokens") or []) if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise TokensFileInvalid(f"tokens file {path} must be a mapping with a `tokens:` list")
    entries = [_entry(item, path, index) for index, item in enumerate(items)]
    names = [entry.name for entry in entries]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise TokensFileInvalid(f"tokens file {path} names {', '.join(twice)} more than once")
    return entries


def _entry(item: Any, path: Path, index: int) -> TokenEntry:
    where = f"tokens file {path}, entry {index + 1}"
    if not isinstance(item, dict):
        raise TokensFileInvalid(f"{where}: must be a mapping with name, sha256 and roles")
    name, sha256, roles = item.get("name"), item.get("sha256"), item.get("roles")
    if not isinstance(name, str) or not _NAME.match(name):
        raise TokensFileInvalid(f"{where}: `name` must be a word such as ci-robot")
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise TokensFileInvalid(f"{where} ({name}): `sha256` must be 64 lowercase hex digits")
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise TokensFileInvalid(f"{where} ({name}): `roles` must be a list such as [user]")
    unknown = sorted(set(roles) - {role.value for role in Role})
    if unknown:
        raise TokensFileInvalid(
            f"{where} ({name}): unknown roles {', '.join(unknown)} (viewer, user or admin)"
        )
    return TokenEntry(
        name, sha256, frozenset(Role(role) for role in roles), str(item.get("created", ""))
    )


def _dump(entries: Iterable[TokenEntry]) -> bytes:
    document = {"tokens": [entry.document() for entry in entries]}
    return yaml.safe_dump(document, sort_keys=False).encode()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Holds an exclusive lock beside `path`, so two writers do not lose each other's entry."""
    if not path.parent.is_dir():
        private_directory(path.parent)
    descriptor = os.open(
        path.parent / f".{path.name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
    )
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def create_token(path: Path, name: str, roles: Iterable[Role], *, replace: bool = False) -> str:
    """Adds a token named `name` with `roles` to the file at `path` and returns it.

    The token is returned once and stored nowhere: the file gets its SHA-256. The file is
    rewritten atomically with mode `0600` (its folder made `0700` when missing). A name already
    in the file raises `Invalid` unless `replace`, which gives the name a new token and roles
    (the old token stops working).
    """
    chosen = frozenset(roles)
    if not _NAME.match(name):
        raise Invalid(
            f"token name {name!r} must start with a letter or digit and hold only letters, "
            "digits and . _ @ + - (at most 128)"
        )
    if not chosen:
        raise Invalid("a token needs at least one role: viewer, user or admin")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    entry = TokenEntry(name, digest(token), chosen, to_iso(utcnow()))
    with _locked(path):
        entries = read_tokens(path)
        if any(existing.name == name for existing in entries) and not replace:
            raise Invalid(
                f"tokens file {path} already has a token named {name} "
                "(revoke it first, or replace it)"
            )
        kept = [existing for existing in entries if existing.name != name]
        write_private(path, _dump([*kept, entry]))
    return token


def revoke_token(path: Path, name: str) -> None:
    """Removes the token named `name` from the file at `path`; `NotFound` when it has none."""
    with _locked(path):
        entries = read_tokens(path)
        kept = [entry for entry in entries if entry.name != name]
        if len(kept) == len(entries):
            raise NotFound(f"tokens file {path} has no token named {name}")
        write_private(path, _dump(kept))


class TokenFile:
    """Looks tokens up in a tokens file, re-reading it whenever it changes on disk.

    A missing file holds no tokens. A file that turns malformed raises `TokensFileInvalid` on
    every lookup until it is fixed: refusing everyone is safer than going on with entries a
    revocation may have meant to remove.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._entries: list[TokenEntry] = []

    def _current(self) -> list[TokenEntry]:
        try:
            status = self.path.stat()
        except FileNotFoundError:
            self._seen, self._entries = None, []
            return self._entries
        # A rename (how the file is written) changes the inode even within one mtime tick.
        seen = (status.st_mtime_ns, status.st_size, status.st_ino)
        if seen != self._seen:
            self._entries = read_tokens(self.path)
            self._seen = seen
        return self._entries

    def lookup(self, token: str) -> Principal | None:
        """The principal `token` authenticates, or None when the file does not hold it.

        Every entry is compared in constant time, so the answer's timing tells nothing about
        how close a guess came.
        """
        wanted = digest(token)
        found: TokenEntry | None = None
        for entry in self._current():
            if hmac.compare_digest(entry.sha256, wanted):
                found = entry
        return Principal(subject=found.name, roles=found.roles) if found else None
