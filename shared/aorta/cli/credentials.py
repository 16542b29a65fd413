"""How the CLI proves the platform is the right one, and who the CLI is: TLS and a token.

TLS is used whenever a CA is given: `--ca FILE`, `AORTA_CA`, or `ca:` in the config file
(`system` trusts the public CAs gRPC trusts by default instead of one file).
`AORTA_CLIENT_CERT` and `AORTA_CLIENT_KEY` (`client_cert:`/`client_key:`) add a client
certificate for mTLS.

The token comes from, first to last: `AORTA_TOKEN`, the file `AORTA_TOKEN_FILE` names,
`token:` and `token_file:` in the config file. It is never a flag: command lines end up in
shell history and in every user's `ps`. It travels as `authorization: Bearer <token>`; over
TLS as call credentials, over a plain loopback connection through an interceptor (gRPC refuses
call credentials on insecure channels). A token is never sent in clear beyond loopback.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from aorta.cli.failures import UsageFailure

CA_VARIABLE = "AORTA_CA"
CLIENT_CERT_VARIABLE = "AORTA_CLIENT_CERT"
CLIENT_KEY_VARIABLE = "AORTA_CLIENT_KEY"
TOKEN_VARIABLE = "AORTA_TOKEN"
TOKEN_FILE_VARIABLE = "AORTA_TOKEN_FILE"
SYSTEM_ROOTS = "system"
"""The `--ca` value that trusts the public CAs gRPC trusts by default (its bundled roots, or
the file `GRPC_DEFAULT_SSL_ROOTS_FILE_PATH` names): for a platform with a public certificate."""


@dataclass(frozen=True)
class ChannelSecurity:
    """What a channel to the platform needs: the CA to trust (TLS when set), a client
    certificate, and the bearer token. The token never shows in `repr`."""

    ca: Path | str | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    token: str | None = field(default=None, repr=False)
    token_source: str = ""

    @property
    def tls(self) -> bool:
        return self.ca is not None


def _path(value: Any, *, source: str, base: Path | None = None) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise UsageFailure(f"{source} must be a file path")
    path = Path(value.strip()).expanduser()
    return base / path if base is not None and not path.is_absolute() else path


def _first(
    environ: Mapping[str, str],
    variable: str,
    config: Mapping[str, Any],
    key: str,
    config_file: Path,
) -> tuple[Any, str, Path | None] | None:
    """The value of `variable`, else of `key` in the config file, with where it came from and
    the folder relative paths are read from."""
    if environ.get(variable):
        return environ[variable], variable, None
    if config.get(key) is not None:
        return config[key], f"{config_file}: `{key}`", config_file.parent
    return None


def resolve_security(
    ca_flag: str | None,
    environ: Mapping[str, str],
    config: Mapping[str, Any],
    config_file: Path,
) -> ChannelSecurity:
    """The channel security the flag, environment and config file ask for.

    Paths in the config file are relative to its folder. A token file that cannot be read, or
    a client certificate without its key or without TLS, is a `UsageFailure`.
    """
    ca: Path | str | None = None
    if ca_flag:
        ca = SYSTEM_ROOTS if ca_flag == SYSTEM_ROOTS else _path(ca_flag, source="--ca")
    elif found := _first(environ, CA_VARIABLE, config, "ca", config_file):
        value, source, base = found
        ca = SYSTEM_ROOTS if value == SYSTEM_ROOTS else _path(value, source=source, base=base)
    cert = _first(environ, CLIENT_CERT_VARIABLE, config, "client_cert", config_file)
    key = _first(environ, CLIENT_KEY_VARIABLE, config, "client_key", config_file)
    if (cert is None) != (key is None):
        raise UsageFailure(
            f"a client certificate needs both {CLIENT_CERT_VARIABLE} and {CLIENT_KEY_VARIABLE} "
            "(or client_cert and client_key in the config file)"
        )
    if cert is not None and ca is None:
        raise UsageFailure(
            f"a client certificate ({CLIENT_CERT_VARIABLE}) needs TLS: give --ca or {CA_VARIABLE}"
        )
    token, token_source = _token(environ, config, config_file)
    return ChannelSecurity(
        ca=ca,
        client_cert=_path(cert[0], source=cert[1], base=cert[2]) if cert else None,
        client_key=_path(key[0], source=key[1], base=key[2]) if key else None,
        token=token,
        token_source=token_source,
    )


def _token(
    environ: Mapping[str, str], config: Mapping[str, Any], config_file: Path
) -> tuple[str | None, str]:
    if environ.get(TOKEN_VARIABLE):
        return environ[TOKEN_VARIABLE].strip(), TOKEN_VARIABLE
    if environ.get(TOKEN_FILE_VARIABLE):
        path = _path(environ[TOKEN_FILE_VARIABLE], source=TOKEN_FILE_VARIABLE)
        return _read_token(path, TOKEN_FILE_VARIABLE), TOKEN_FILE_VARIABLE
    if config.get("token") is not None:
        if not isinstance(config["token"], str) or not config["token"].strip():
            raise UsageFailure(f"config file {config_file}: `token` must be a string")
        return config["token"].strip(), f"{config_file}: `token`"
    if config.get("token_file") is not None:
        source = f"{config_file}: `token_file`"
        path = _path(config["token_file"], source=source, base=config_file.parent)
        return _read_token(path, source), source
    return None, ""


def _read_token(path: Path, source: str) -> str:
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise UsageFailure(f"{source}: cannot read {path}: {exc.strerror}") from exc
    if not token:
        raise UsageFailure(f"{source}: {path} holds no token")
    return token


def is_loopback(address: str) -> bool:
    """Whether `host:port` names this machine (localhost or a loopback address)."""
    host = address.rsplit(":", 1)[0].strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageFailure(f"{what} {path}: {exc.strerror}") from exc


def channel_credentials(security: ChannelSecurity) -> grpc.ChannelCredentials:
    """TLS credentials trusting `security.ca` (with the client certificate, and the token as
    call credentials, when given). Unreadable files are a `UsageFailure` naming them."""
    roots = None
    if isinstance(security.ca, Path):
        roots = _read(security.ca, "the CA certificate")
    key = _read(security.client_key, "the client key") if security.client_key else None
    chain = _read(security.client_cert, "the client certificate") if security.client_cert else None
    credentials = grpc.ssl_channel_credentials(
        root_certificates=roots, private_key=key, certificate_chain=chain
    )
    if security.token:
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.access_token_call_credentials(security.token)
        )
    return credentials


def refuse_clear_token(security: ChannelSecurity, address: str) -> None:
    """Raises `UsageFailure` when a token would cross the network unencrypted."""
    if security.token and not security.tls and not is_loopback(address):
        raise UsageFailure(
            f"refusing to send the token ({security.token_source}) to {address} without TLS: "
            f"give the platform's CA with --ca or {CA_VARIABLE}"
        )


@dataclass(frozen=True)
class _CallDetails(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: Any
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class BearerToken(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds `authorization: Bearer <token>` to every call of a plain (loopback) channel."""

    def __init__(self, token: str) -> None:
        self._entry = ("authorization", f"Bearer {token}")

    def __repr__(self) -> str:
        return "BearerToken(***)"

    def _with_token(self, details: grpc.ClientCallDetails) -> _CallDetails:
        metadata = [*(details.metadata or ()), self._entry]
        return _CallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._with_token(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._with_token(details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._with_token(details), requests)
