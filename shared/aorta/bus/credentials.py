"""Who a process is on the bus, and how it reaches it: NATS user credentials and TLS.

`aorta up` makes a random password for every bus user (`generate_credentials`) and hands each
service its own; a process started by `aorta serve` reads one user from its settings
(`AORTA_NATS_USER`, `AORTA_NATS_PASSWORD`). Passwords never appear in a `repr`, a log line or
an error.
"""

from __future__ import annotations

import json
import secrets
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from aorta.auth.private_files import write_private
from aorta.settings import Settings, SettingsError

PASSWORD_BYTES = 32
"""Random bytes in a generated password (43 URL-safe characters)."""


@dataclass(frozen=True)
class BusCredentials:
    """A NATS user and its password; `repr` hides the password."""

    user: str
    password: str = field(repr=False)


def generate_credentials(users: Iterable[str]) -> dict[str, BusCredentials]:
    """A fresh random password for each of `users`, by user."""
    return {user: BusCredentials(user, secrets.token_urlsafe(PASSWORD_BYTES)) for user in users}


def save_credentials(path: Path, credentials: BusCredentials) -> None:
    """Writes `credentials` to `path` as JSON (`{"user": ..., "password": ...}`), readable by
    its owner only: how `aorta up` hands the `events` user to integrations on the same host."""
    document = {"user": credentials.user, "password": credentials.password}
    write_private(path, json.dumps(document).encode())


def settings_credentials(settings: Settings) -> BusCredentials | None:
    """The user the settings name (`AORTA_NATS_USER`, `AORTA_NATS_PASSWORD`), or None when
    they name none (a bus without authentication, as in tests)."""
    if not settings.nats_user:
        if settings.nats_password:
            raise SettingsError("setting AORTA_NATS_PASSWORD is set but AORTA_NATS_USER is not")
        return None
    if not settings.nats_password:
        raise SettingsError("setting AORTA_NATS_USER is set but AORTA_NATS_PASSWORD is not")
    return BusCredentials(settings.nats_user, settings.nats_password)


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS the settings ask of the bus connection, or None for plain TCP.

    `AORTA_NATS_TLS_CA` verifies the server against that CA (else the system's); a client
    certificate (`AORTA_NATS_TLS_CERT` with `AORTA_NATS_TLS_KEY`) is presented when the server
    requires one. TLS is used when any of the three is set.
    """
    ca, cert, key = settings.nats_tls_ca, settings.nats_tls_cert, settings.nats_tls_key
    if not (ca or cert or key):
        return None
    if bool(cert) != bool(key):
        raise SettingsError("settings AORTA_NATS_TLS_CERT and AORTA_NATS_TLS_KEY go together")
    try:
        context = ssl.create_default_context(cafile=ca or None)
        if cert:
            context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(f"the bus's TLS files cannot be read: {exc}") from exc
    return context
