"""The web console's own settings, read from `AORTA_WEB_*` variables.

- `AORTA_WEB_ADDRESS` (default `127.0.0.1:30080`): where the console listens; beyond loopback
  it needs authentication on the platform (or `AORTA_INSECURE`), as the gateway does. It serves
  HTTPS with the gateway's certificate when `AORTA_GATEWAY_TLS_CERT` is set.
- `AORTA_WEB_GATEWAY` (default: the gateway's `AORTA_GRPC_ADDRESS`, a wildcard host read as
  127.0.0.1): the gRPC address the console calls.
- `AORTA_WEB_GATEWAY_CA` (PEM file): the CA that signed the gateway's certificate; the console
  then calls it over TLS. `AORTA_WEB_GATEWAY_SERVER_NAME` overrides the name checked.
- `AORTA_WEB_GATEWAY_PLAINTEXT` (default false): call a gateway beyond loopback in plain text,
  users' tokens included, for a cluster network that is trusted (the Kubernetes base, whose
  gateway serves no TLS); otherwise that is refused.
- `AORTA_WEB_MAX_UPLOAD_MB` (default 4096): the largest request body (a job's input files).
- `AORTA_WEB_SESSION_HOURS` (default 12): how long a sign-in lasts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aorta.auth.exposure import bind_host, is_loopback
from aorta.settings import EnvReader, Settings, SettingsError

DEFAULT_PORT = 30080
DEFAULT_ADDRESS = f"127.0.0.1:{DEFAULT_PORT}"
_WILDCARDS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class WebSettings:
    """Where the console listens, which gateway it calls and how, and its limits."""

    address: str
    gateway: str
    gateway_ca: Path | None
    gateway_server_name: str
    gateway_plaintext: bool
    max_upload_bytes: int
    session_seconds: float
    tls_cert: Path | None
    tls_key: Path | None

    @property
    def host(self) -> str:
        return bind_host(self.address)

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])

    @property
    def loopback(self) -> bool:
        return is_loopback(self.address)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], platform: Settings) -> WebSettings:
        """The console's settings; `platform` gives the gateway's address and TLS files."""
        env = EnvReader(environ)
        address = env.text("AORTA_WEB_ADDRESS", DEFAULT_ADDRESS)
        _, separator, port = address.rpartition(":")
        if not separator or not port.isdigit() or int(port) > 65535:
            raise SettingsError(f"setting AORTA_WEB_ADDRESS={address!r} is not HOST:PORT")
        gateway_ca = env.optional("AORTA_WEB_GATEWAY_CA")
        return cls(
            address=address,
            gateway=env.text("AORTA_WEB_GATEWAY", local_gateway(platform.grpc_address)),
            gateway_ca=Path(gateway_ca) if gateway_ca else None,
            gateway_server_name=env.text("AORTA_WEB_GATEWAY_SERVER_NAME", ""),
            gateway_plaintext=env.boolean("AORTA_WEB_GATEWAY_PLAINTEXT", False),
            max_upload_bytes=env.integer("AORTA_WEB_MAX_UPLOAD_MB", 4096, minimum=1) << 20,
            session_seconds=env.number("AORTA_WEB_SESSION_HOURS", 12.0, minimum=0.01) * 3600,
            tls_cert=Path(platform.gateway_tls_cert) if platform.gateway_tls_cert else None,
            tls_key=Path(platform.gateway_tls_key) if platform.gateway_tls_key else None,
        )


def local_gateway(grpc_address: str) -> str:
    """The address to call a gateway bound to `grpc_address` at: a wildcard host becomes
    127.0.0.1, since a console beside the gateway reaches it on loopback."""
    host = bind_host(grpc_address)
    port = grpc_address.rpartition(":")[2]
    if host in _WILDCARDS:
        return f"127.0.0.1:{port}"
    return grpc_address
