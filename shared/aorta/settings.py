"""Settings read from `AORTA_*` variables into frozen, documented dataclasses.

Only a process's `__main__` touches `os.environ`; everything else receives a mapping, so tests
build settings from a plain dict. Every variable is listed in docs/settings.md.
"""

from __future__ import annotations

import dataclasses
import re
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


_URI_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)(?P<password>[^@\s]*)@")


def redact_uri(text: str) -> str:
    """`text` with the password of every `scheme://user:password@` in it replaced by `***`.

    Connection URIs (MongoDB, NATS) may carry credentials; anything that prints or logs one
    passes it through here first.
    """
    return _URI_PASSWORD.sub(lambda match: f"{match.group('head')}***@", text)


def _percent(env: EnvReader, name: str, default: float) -> float:
    """A percentage setting (`90` or `90%`, above 0 and at most 100) as a ratio."""
    raw = env.text(name, f"{default:g}").strip().removesuffix("%")
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"setting {name}={raw!r} is not a percentage (e.g. 90)") from None
    if not 0 < value <= 100:
        raise SettingsError(f"setting {name}={raw!r} must be above 0 and at most 100")
    return value / 100


def _redacted_repr(obj: Any) -> str:
    parts = []
    for f in dataclasses.fields(obj):
        if not f.repr:
            continue
        value = getattr(obj, f.name)
        if f.metadata.get("secret") and value:
            shown = "'***'"
        elif isinstance(value, str):
            shown = repr(redact_uri(value))
        else:
            shown = repr(value)
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
      `AORTA_S3_SECURE` (default false), `AORTA_S3_REGION`; `AORTA_S3_PUBLIC_ENDPOINT`
      (`HOST[:PORT]` or `http(s)://HOST[:PORT]`, default the endpoint): where clients reach
      the store, for the direct links the gateway hands out (docs/payloads.md).
    - `AORTA_DIRECT_LINK_SECONDS` (default 300): how long a direct link may be used.
    - `AORTA_GRPC_ADDRESS` (default `127.0.0.1:30031`): where the gateway listens.
    - `AORTA_INSECURE` (default false): allow the gateway to listen beyond loopback without
      authentication (a warning is logged on every start).
    - `AORTA_GATEWAY_TLS_CERT`, `AORTA_GATEWAY_TLS_KEY` (PEM files): the gateway serves TLS;
      `AORTA_GATEWAY_TLS_CLIENT_CA` (PEM file) also requires client certificates signed by it.
    - `AORTA_AUTH` (default false): callers must authenticate (bearer tokens); also on when
      `AORTA_AUTH_TOKENS_FILE` or `AORTA_OIDC_ISSUER` is set.
    - `AORTA_AUTH_TOKENS_FILE`: the tokens file (names, SHA-256 of tokens, roles).
    - `AORTA_OIDC_ISSUER`, `AORTA_OIDC_AUDIENCE`, `AORTA_OIDC_JWKS` (a JWKS file or URL),
      `AORTA_OIDC_ROLES_CLAIM` (default `roles`): OpenID Connect JWTs accepted as tokens.
    - `AORTA_NATS_USER`, `AORTA_NATS_PASSWORD`: this process's credentials on the bus;
      `AORTA_NATS_TLS_CA`, `AORTA_NATS_TLS_CERT`, `AORTA_NATS_TLS_KEY`: TLS to the bus.
    - `AORTA_AUDIT_RETENTION_DAYS` (default 365): how long audit records are kept.
    - `AORTA_RPC_TIMEOUT` (seconds, default 30): how long a bus request waits for its answer.
    - `AORTA_DISK_WATERMARK` (percent, default 90; 100 turns it off): how full the data dir's
      disk (and a local blob folder's) may get before new jobs and uploads are refused.
    - `AORTA_EVENTS_MAX_BYTES` (default 1 GiB): the most the event stream keeps; `aorta up`
      gives it less when its disk has less room (`aorta.disk_space`).
    - `AORTA_HEALTH_PORT` (default 0: off): an HTTP port answering `/healthz/live` and
      `/healthz/ready`, for Kubernetes probes, on `AORTA_HEALTH_HOST` (default `127.0.0.1`;
      `0.0.0.0` in a pod, where the kubelet probes the pod's address); it also serves the
      process's Prometheus metrics at `/metrics`.
    - `AORTA_METRICS` (default on): `off` stops feeding metrics and serving `/metrics`.
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
    s3_public_endpoint: str = ""
    direct_link_seconds: int = 300
    grpc_address: str = "127.0.0.1:30031"
    insecure: bool = False
    gateway_tls_cert: str = ""
    gateway_tls_key: str = ""
    gateway_tls_client_ca: str = ""
    auth: bool = False
    auth_tokens_file: str = ""
    oidc_issuer: str = ""
    oidc_audience: str = ""
    oidc_jwks: str = ""
    oidc_roles_claim: str = "roles"
    nats_user: str = ""
    nats_password: str = secret()
    nats_tls_ca: str = ""
    nats_tls_cert: str = ""
    nats_tls_key: str = ""
    audit_retention_days: int = 365
    rpc_timeout: float = 30.0
    disk_watermark: float = 0.9
    events_max_bytes: int = 1 << 30
    health_port: int = 0
    health_host: str = "127.0.0.1"
    metrics: bool = True
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
            s3_public_endpoint=env.text("AORTA_S3_PUBLIC_ENDPOINT", ""),
            direct_link_seconds=env.integer("AORTA_DIRECT_LINK_SECONDS", 300, minimum=1),
            grpc_address=env.text("AORTA_GRPC_ADDRESS", "127.0.0.1:30031"),
            insecure=env.boolean("AORTA_INSECURE", False),
            gateway_tls_cert=env.text("AORTA_GATEWAY_TLS_CERT", ""),
            gateway_tls_key=env.text("AORTA_GATEWAY_TLS_KEY", ""),
            gateway_tls_client_ca=env.text("AORTA_GATEWAY_TLS_CLIENT_CA", ""),
            auth=env.boolean("AORTA_AUTH", False),
            auth_tokens_file=env.text("AORTA_AUTH_TOKENS_FILE", ""),
            oidc_issuer=env.text("AORTA_OIDC_ISSUER", ""),
            oidc_audience=env.text("AORTA_OIDC_AUDIENCE", ""),
            oidc_jwks=env.text("AORTA_OIDC_JWKS", ""),
            oidc_roles_claim=env.text("AORTA_OIDC_ROLES_CLAIM", "roles"),
            nats_user=env.text("AORTA_NATS_USER", ""),
            nats_password=env.text("AORTA_NATS_PASSWORD", ""),
            nats_tls_ca=env.text("AORTA_NATS_TLS_CA", ""),
            nats_tls_cert=env.text("AORTA_NATS_TLS_CERT", ""),
            nats_tls_key=env.text("AORTA_NATS_TLS_KEY", ""),
            audit_retention_days=env.integer("AORTA_AUDIT_RETENTION_DAYS", 365, minimum=1),
            rpc_timeout=env.number("AORTA_RPC_TIMEOUT", 30.0, minimum=0.1),
            disk_watermark=_percent(env, "AORTA_DISK_WATERMARK", 90.0),
            events_max_bytes=env.integer("AORTA_EVENTS_MAX_BYTES", 1 << 30, minimum=1 << 20),
            health_port=env.integer("AORTA_HEALTH_PORT", 0, minimum=0),
            health_host=env.text("AORTA_HEALTH_HOST", "127.0.0.1"),
            metrics=env.boolean("AORTA_METRICS", True),
            log_format=env.choice("AORTA_LOG_FORMAT", "json", ("json", "console")),
            log_level=env.choice(
                "AORTA_LOG_LEVEL", "info", ("debug", "info", "warning", "error", "critical")
            ),
        )

    @property
    def auth_enabled(self) -> bool:
        """Whether callers of the gateway must authenticate."""
        return self.auth or bool(self.auth_tokens_file) or bool(self.oidc_issuer)

    @property
    def gateway_tls(self) -> bool:
        """Whether the gateway serves TLS."""
        return bool(self.gateway_tls_cert)

    def with_changes(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)
