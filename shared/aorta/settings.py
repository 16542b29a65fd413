"""Settings read from `AORTA_*` variables into frozen, documented dataclasses.

Only a process's `__main__` touches `os.environ`; everything else receives a mapping, so tests
build settings from a plain dict. Every variable is listed in docs/settings.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aorta.errors import ErrorCode, Invalid


class SettingsError(Invalid):
    """A setting is missing or cannot be parsed; the message names the variable."""

    default_code = ErrorCode.INTERNAL


class EnvReader:
    """Strict typed access to an environment mapping, with errors that name the variable."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str, default: str | None = None) -> str:
        value = self._environ.get(name)
        if value is None or value == "":
            if default is None:
                raise SettingsError(f"setting {name} is required but not set")
            return default
        return value

    def optional(self, name: str) -> str | None:
        value = self._environ.get(name)
        return value if value else None

    def integer(self, name: str, default: int, *, minimum: int | None = None) -> int:
        raw = self._environ.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"setting {name}={raw!r} is not an integer") from None
        if minimum is not None and value < minimum:
            raise SettingsError(f"setting {name}={value} is below the minimum {minimum}")
        return value

    def number(self, name: str, default: float, *, minimum: float | None = None) -> float:
        raw = self._environ.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"setting {name}={raw!r} is not a number") from None
        if minimum is not None and value < minimum:
            raise SettingsError(f"setting {name}={value} is below the minimum {minimum}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self._environ.get(name)
        if raw is None or raw == "":
            return default
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(f"setting {name}={raw!r} is not a boolean (use true or false)")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default)
        if value not in choices:
            raise SettingsError(f"setting {name}={value!r} must be one of {', '.join(choices)}")
        return value


def _redacted_repr(obj: Any) -> str:
    parts = []
    for f in dataclasses.fields(obj):
        if not f.repr:
            continue
        value = getattr(obj, f.name)
        shown = "'***'" if f.metadata.get("secret") and value else repr(value)
        parts.append(f"{f.name}={shown}")
    return f"{type(obj).__name__}({', '.join(parts)})"


def secret(default: str = "") -> Any:
    """A dataclass field whose value `repr` never shows."""
    return field(default=default, metadata={"secret": True})


@dataclass(frozen=True, repr=False)
class Settings:
    """What every Aorta process needs: where the bus, the state and the bytes are.

    - `AORTA_DATA_DIR` (default `.aorta`): local data for the embedded adapters.
    - `AORTA_NATS_URL` (default `nats://127.0.0.1:4222`): the bus.
    - `AORTA_STATE_STORE` (default `sqlite:///<data dir>/state.db`): `sqlite:///PATH` or a
      `mongodb://` URI (database from `AORTA_MONGODB_DATABASE`, default `aorta`).
    - `AORTA_BLOB_STORE` (default `file:///<data dir>/blobs`): `file:///PATH` or `s3://BUCKET`
      with `AORTA_S3_ENDPOINT` (host:port), `AORTA_S3_ACCESS_KEY`, `AORTA_S3_SECRET_KEY`,
      `AORTA_S3_SECURE` (default false), `AORTA_S3_REGION`.
    - `AORTA_GRPC_ADDRESS` (default `0.0.0.0:30031`): where the gateway listens.
    - `AORTA_RPC_TIMEOUT` (seconds, default 30): how long a bus request waits for its answer.
    - `AORTA_HEALTH_PORT` (default 0: off): an HTTP port answering `/healthz/live` and
      `/healthz/ready`, for Kubernetes probes.
    - `AORTA_LOG_FORMAT` (`json` or `console`, default `json`), `AORTA_LOG_LEVEL` (default `info`).
    """

    data_dir: Path
    nats_url: str
    state_store: str
    mongodb_database: str
    blob_store: str
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str = secret()
    s3_secure: bool = False
    s3_region: str = ""
    grpc_address: str = "0.0.0.0:30031"
    rpc_timeout: float = 30.0
    health_port: int = 0
    log_format: str = "json"
    log_level: str = "info"

    __repr__ = _redacted_repr

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        env = EnvReader(environ)
        data_dir = Path(env.text("AORTA_DATA_DIR", ".aorta"))
        return cls(
            data_dir=data_dir,
            nats_url=env.text("AORTA_NATS_URL", "nats://127.0.0.1:4222"),
            state_store=env.text("AORTA_STATE_STORE", f"sqlite:///{data_dir / 'state.db'}"),
            mongodb_database=env.text("AORTA_MONGODB_DATABASE", "aorta"),
            blob_store=env.text("AORTA_BLOB_STORE", f"file:///{data_dir / 'blobs'}"),
            s3_endpoint=env.text("AORTA_S3_ENDPOINT", "127.0.0.1:9000"),
            s3_access_key=env.text("AORTA_S3_ACCESS_KEY", "minioadmin"),
            s3_secret_key=env.text("AORTA_S3_SECRET_KEY", "minioadmin"),
            s3_secure=env.boolean("AORTA_S3_SECURE", False),
            s3_region=env.text("AORTA_S3_REGION", "us-east-1"),
            grpc_address=env.text("AORTA_GRPC_ADDRESS", "0.0.0.0:30031"),
            rpc_timeout=env.number("AORTA_RPC_TIMEOUT", 30.0, minimum=0.1),
            health_port=env.integer("AORTA_HEALTH_PORT", 0, minimum=0),
            log_format=env.choice("AORTA_LOG_FORMAT", "json", ("json", "console")),
            log_level=env.choice(
                "AORTA_LOG_LEVEL", "info", ("debug", "info", "warning", "error", "critical")
            ),
        )

    def with_changes(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)
