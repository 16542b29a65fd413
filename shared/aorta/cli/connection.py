"""Where the platform is, and the one gRPC channel a command talks to it through.

The address comes from, first to last: `--host`, `AORTA_HOST`, the `host:` key of the config
file (`~/.aorta/config.yaml`, or the file `AORTA_CONFIG` names), and `127.0.0.1:30031`. A host
without a port gets Clara's 30031. TLS and the token come from the same places
(`aorta.cli.credentials`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import grpc

import aorta
from aorta.api import (
    clara_pb2_grpc,
    common_pb2,
    jobs_pb2_grpc,
    models_pb2_grpc,
    payloads_pb2_grpc,
    pipelines_pb2_grpc,
)
from aorta.cli.credentials import (
    BearerToken,
    ChannelSecurity,
    channel_credentials,
    refuse_clear_token,
    resolve_security,
)
from aorta.cli.failures import PlatformFailure, UsageFailure

DEFAULT_PORT = 30031
DEFAULT_ADDRESS = f"127.0.0.1:{DEFAULT_PORT}"
HOST_VARIABLE = "AORTA_HOST"
CONFIG_VARIABLE = "AORTA_CONFIG"
UNARY_TIMEOUT = 60.0
"""Seconds a unary call may take; streams have no deadline, they end or are cancelled."""

# Model archives and payload files arrive in chunks the server chooses (Clara clients allow up
# to 4 MiB - 512); leave room for the envelope.
_MAX_MESSAGE = 8 * 1024 * 1024
_HOST_PORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[^:\[\]]+)(?::(?P<port>\d+))?$")


@dataclass(frozen=True)
class Target:
    """The platform's address, where the address came from (for error messages), and how
    to reach it securely."""

    address: str
    source: str
    security: ChannelSecurity = field(default_factory=ChannelSecurity)


def normalize_address(text: str, *, source: str) -> str:
    """`host[:port]` with the default port filled in; `[v6]:port` accepted.

    A malformed value is a `UsageFailure` naming `source` (the flag, variable or file).
    """
    cleaned = text.strip()
    for scheme in ("grpc://", "dns:///"):
        cleaned = cleaned.removeprefix(scheme)
    match = _HOST_PORT.match(cleaned)
    port = match.group("port") if match else None
    if match is None or (port is not None and not 0 < int(port) < 65536):
        raise UsageFailure(f"{source}: {text!r} is not an address (expected HOST or HOST:PORT)")
    return f"{match.group('host')}:{port or DEFAULT_PORT}"


def config_path(environ: Mapping[str, str]) -> Path:
    """The config file: `AORTA_CONFIG` when set, else `~/.aorta/config.yaml`."""
    chosen = environ.get(CONFIG_VARIABLE)
    return Path(chosen).expanduser() if chosen else Path.home() / ".aorta" / "config.yaml"


def read_config(path: Path) -> dict[str, Any]:
    """The config file's mapping; {} when the file does not exist.

    A file that is not a YAML mapping is a `UsageFailure` naming the file: silently ignoring a
    broken config would send commands to the wrong platform.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise UsageFailure(f"config file {path}: {exc.strerror}") from exc
    # Imported here: yaml is slow to import, and most commands find no config file.
    import yaml

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageFailure(f"config file {path} is not valid YAML: {exc}") from exc
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise UsageFailure(f"config file {path} must be a mapping such as `host: HOST:PORT`")
    return document


def resolve_target(
    flag: str | None, environ: Mapping[str, str], *, ca: str | None = None
) -> Target:
    """The address to use (flag > `AORTA_HOST` > config file > default), with the TLS and
    token settings of `--ca`, the environment and the config file."""
    path = config_path(environ)
    config = read_config(path)
    security = resolve_security(ca, environ, config, path)
    if flag:
        return Target(normalize_address(flag, source="--host"), "--host", security)
    from_env = environ.get(HOST_VARIABLE)
    if from_env:
        address = normalize_address(from_env, source=HOST_VARIABLE)
        return Target(address, HOST_VARIABLE, security)
    configured = config.get("host")
    if configured is not None:
        if not isinstance(configured, str):
            raise UsageFailure(f"config file {path}: `host` must be a string such as HOST:PORT")
        return Target(normalize_address(configured, source=str(path)), str(path), security)
    return Target(DEFAULT_ADDRESS, "default", security)


def request_header() -> common_pb2.RequestHeader:
    """The header every request carries: the Clara API version spoken and who is calling."""
    major, minor, patch = aorta.CLARA_API_VERSION
    return common_pb2.RequestHeader(
        api_version=common_pb2.Version(major=major, minor=minor, patch=patch),
        user_agent=f"aorta-cli/{aorta.__version__}",
    )


class _HasHeader(Protocol):
    @property
    def header(self) -> common_pb2.ResponseHeader: ...


def check(response: _HasHeader, action: str) -> None:
    """Raises `PlatformFailure` when `response`'s header carries a negative code."""
    if response.header.code < 0:
        raise PlatformFailure(action, response.header.code, list(response.header.messages))


_Reply = TypeVar("_Reply", bound=_HasHeader)


def checked_replies(replies: Iterable[_Reply], action: str) -> Iterator[_Reply]:
    """The replies of a server stream as they arrive, the first one checked (`check`): the
    platform answers a refused request with one reply whose header says why."""
    for index, reply in enumerate(replies):
        if index == 0:
            check(reply, action)
        yield reply


class _MethodRecorder(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Remembers the last method called, so a gRPC failure can name the RPC that failed."""

    def __init__(self) -> None:
        self.method = "a platform call"

    def _record(self, details: grpc.ClientCallDetails) -> None:
        self.method = details.method.rsplit(".", 1)[-1].replace("/", ".")

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        self._record(details)
        return continuation(details, request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        self._record(details)
        return continuation(details, request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        self._record(details)
        return continuation(details, requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        self._record(details)
        return continuation(details, requests)


class Platform:
    """The stubs of one platform over one lazily opened channel; close it when done."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._raw: grpc.Channel | None = None
        self._channel: grpc.Channel | None = None
        self._recorder = _MethodRecorder()

    @property
    def last_method(self) -> str:
        """`Service.Method` of the most recent call (`Pipelines.Create`)."""
        return self._recorder.method

    @property
    def channel(self) -> grpc.Channel:
        """The channel, opened on first use: TLS when a CA is configured, the token on every
        call when one is. Raises `UsageFailure` rather than send a token in clear beyond
        loopback."""
        if self._channel is None:
            security = self.target.security
            options = [
                ("grpc.max_receive_message_length", _MAX_MESSAGE),
                ("grpc.max_send_message_length", _MAX_MESSAGE),
            ]
            interceptors: list[Any] = [self._recorder]
            if security.tls:
                credentials = channel_credentials(security)
                self._raw = grpc.secure_channel(self.target.address, credentials, options)
            else:
                refuse_clear_token(security, self.target.address)
                self._raw = grpc.insecure_channel(self.target.address, options)
                if security.token:
                    interceptors.append(BearerToken(security.token))
            self._channel = grpc.intercept_channel(self._raw, *interceptors)
        return self._channel

    @property
    def clara(self) -> clara_pb2_grpc.ClaraStub:
        return clara_pb2_grpc.ClaraStub(self.channel)

    @property
    def jobs(self) -> jobs_pb2_grpc.JobsStub:
        return jobs_pb2_grpc.JobsStub(self.channel)

    @property
    def pipelines(self) -> pipelines_pb2_grpc.PipelinesStub:
        return pipelines_pb2_grpc.PipelinesStub(self.channel)

    @property
    def payloads(self) -> payloads_pb2_grpc.PayloadsStub:
        return payloads_pb2_grpc.PayloadsStub(self.channel)

    @property
    def models(self) -> models_pb2_grpc.ModelsStub:
        return models_pb2_grpc.ModelsStub(self.channel)

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
        self._raw = self._channel = None
