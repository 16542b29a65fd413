"""`aorta up`: the whole platform in one process on one machine.

A `nats-server` child process (JetStream, data under the data dir) carries the bus, SQLite holds
the state and a local folder the bytes; every service runs in this process. The data dir is
locked so two platforms never share it, and all state survives a restart on the same data dir.

Operators run where `--executor` says: `auto` (the default) runs them in containers when a
container engine answers at `AORTA_CONTAINER_HOST` (or `DOCKER_HOST`, or the usual Docker and
Podman sockets) and as host processes otherwise; the start-up lines say which and why.

Prometheus metrics are served at `/metrics` on `--metrics-port` (default `METRICS_PORT`) of the
listen address; beyond loopback with `--auth` a scrape needs a token too.

Safe by default: the gateway listens on loopback; the data dir is readable by the platform's
user alone; `--auth` makes callers present tokens (an admin token is written on first start);
`--tls auto` makes a private CA and a server certificate under the data dir.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import ipaddress
import os
import stat
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from aorta import __version__
from aorta.auth.principal import Role
from aorta.auth.tls import AutoTls, ensure_auto_tls
from aorta.auth.tokens import TOKENS_FILE_NAME, create_token
from aorta.bus.credentials import generate_credentials
from aorta.bus.nats_server import NatsServerProcess
from aorta.bus_permissions import bus_users
from aorta.cli.connection import DEFAULT_ADDRESS
from aorta.disk_space import event_stream_bytes
from aorta.disk_watch import room_for, settle_reserve
from aorta.executors.selection import AUTO, ExecutorChoice, choose_executor
from aorta.logger import get_logger
from aorta.observability import tracing
from aorta.runtime.health import METRICS_PATH
from aorta.runtime.process import install_stop_signals, run_services
from aorta.runtime.service import Listening, Running, ServiceStarter
from aorta.settings import Settings, redact_uri
from aorta_services.launch import registry

log = get_logger(__name__)

METRICS_PORT = 30090
"""Where `aorta up` serves `/metrics` (and `/healthz/*`) on its listen address by default."""


class DataDirBusy(RuntimeError):
    """Another platform already runs on this data dir."""


@dataclass(frozen=True)
class EmbeddedOptions:
    """What `aorta up` was asked for."""

    data_dir: Path
    listen: str = "127.0.0.1"
    grpc_port: int = 30031
    web_port: int = 30080
    """The web console's port on the listen address (0: any free port)."""
    nats_port: int = -1
    metrics_port: int | None = None
    """Port of the health and metrics endpoint on the listen address; None: `METRICS_PORT`
    when it is free, 0: none."""
    auth: bool = False
    insecure: bool = False
    tls_auto: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    executor: str = AUTO
    log_file: Path | None = None
    """Where the detailed log goes (named in the start-up lines), when it goes to a file."""


@dataclass(frozen=True)
class Access:
    """How clients reach this platform: what the start-up lines tell people."""

    address: str
    ca: Path | None = None
    ca_fingerprint: str = ""
    admin_token: Path | None = None


def embedded_settings(
    base: Settings, options: EmbeddedOptions, nats_url: str, tls: AutoTls | None = None
) -> Settings:
    """`base` with the embedded adapters (SQLite and a local folder under the data dir), the
    gateway's address, TLS (`tls`: what `--tls auto` made) and authentication, and the metrics
    endpoint's address, as `options` ask."""
    data_dir = options.data_dir.resolve()
    changes: dict[str, object] = {
        "data_dir": data_dir,
        "nats_url": nats_url,
        "state_store": f"sqlite:///{data_dir / 'state.db'}",
        "blob_store": f"file:///{data_dir / 'blobs'}",
        "grpc_address": f"{_bracketed(options.listen)}:{options.grpc_port}",
        "insecure": base.insecure or options.insecure,
        "health_host": options.listen,
        "health_port": METRICS_PORT if options.metrics_port is None else options.metrics_port,
    }
    if options.auth:
        changes["auth"] = True
        changes["auth_tokens_file"] = base.auth_tokens_file or str(data_dir / TOKENS_FILE_NAME)
    if tls is not None:
        changes["gateway_tls_cert"] = str(tls.server_cert)
        changes["gateway_tls_key"] = str(tls.server_key)
    if options.tls_cert and options.tls_key:
        changes["gateway_tls_cert"] = str(options.tls_cert)
        changes["gateway_tls_key"] = str(options.tls_key)
    if options.tls_client_ca:
        changes["gateway_tls_client_ca"] = str(options.tls_client_ca)
    return base.with_changes(**changes)


ADMIN_TOKEN_FILE = "admin.token"
TLS_DIR = "tls"


def _unspecified(host: str) -> bool:
    """Whether `host` is a wildcard listen address (all interfaces), which clients on this
    machine reach through loopback."""
    try:
        return not host or ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def private_data_dir(data_dir: Path) -> None:
    """Makes `data_dir` readable by this user alone: the folder 0700 and, the first time a
    data dir made by an older version is seen, everything in it 0700/0600."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if stat.S_IMODE(data_dir.stat().st_mode) == 0o700:
        return
    for folder, folders, files in os.walk(data_dir):
        for name in folders:
            os.chmod(os.path.join(folder, name), 0o700, follow_symlinks=False)
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, 0o600)
    data_dir.chmod(0o700)


def auto_tls(options: EmbeddedOptions) -> AutoTls | None:
    """The private CA and server certificate of `--tls auto` (made on first start, renewed
    when due), or None without it."""
    if not options.tls_auto:
        return None
    return ensure_auto_tls(options.data_dir.resolve() / TLS_DIR, hosts=[options.listen])


def prepare_access(settings: Settings, options: EmbeddedOptions, tls: AutoTls | None) -> Access:
    """Makes the admin token on first start with `--auth` and says how clients reach the
    platform."""
    host = "127.0.0.1" if _unspecified(options.listen) else options.listen
    address = f"{_bracketed(host)}:{options.grpc_port}"
    admin_token: Path | None = None
    if options.auth:
        admin_token = settings.data_dir / ADMIN_TOKEN_FILE
        if not admin_token.exists():
            token = create_token(
                Path(settings.auth_tokens_file), "admin", [Role.ADMIN], replace=True
            )
            descriptor = os.open(admin_token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(token + "\n")
    return Access(
        address=address,
        ca=tls.ca_cert if tls else None,
        ca_fingerprint=tls.ca_fingerprint if tls else "",
        admin_token=admin_token,
    )


def banner(
    access: Access,
    settings: Settings,
    port: int,
    nats_url: str,
    executor: str = "",
    log_file: Path | None = None,
    console_url: str = "",
    metrics_url: str = "",
) -> str:
    """The short text `aorta up` prints for people once it serves: where it listens, where
    operators run (`executor`, the reason of the `ExecutorChoice`), where its console and its
    Prometheus metrics are when it serves them, where its data and detailed log (`log_file`)
    are, how to point the CLI at it, and how to stop it.

    `export AORTA_HOST` is shown only when the CLI's default address would not reach it; the
    CA and admin-token lines whenever `--tls auto` or `--auth` made them. The bus (`nats_url`)
    is the platform's own: it is in the log, never in the banner, and never with a password.
    """
    scheme = "TLS" if settings.gateway_tls else "plain text"
    callers = "tokens required" if settings.auth_enabled else "no authentication"
    address = access.address.rsplit(":", 1)[0] + f":{port}"
    listen = settings.grpc_address.rsplit(":", 1)[0]
    log.info("aorta.up", address=f"{listen}:{port}", bus=redact_uri(nats_url))
    lines = [f"Aorta {__version__} is up: Clara API on {listen}:{port} ({scheme}, {callers})."]
    if console_url:
        lines.append(f"  Web console: {console_url}")
    if metrics_url:
        lines.append(f"  Metrics: {metrics_url}")
    if executor:
        lines.append(f"  {executor[0].upper()}{executor[1:]}.")
    logs = f"; detailed logs in {log_file}" if log_file is not None else ""
    lines.append(f"  Data in {settings.data_dir}{logs}.")
    exports = []
    if address != DEFAULT_ADDRESS:
        exports.append(f"    export AORTA_HOST={address}")
    if access.ca is not None:
        fingerprint = access.ca_fingerprint
        exports.append(f"    export AORTA_CA={access.ca}   # CA fingerprint {fingerprint}")
    if access.admin_token is not None:
        exports.append(f"    export AORTA_TOKEN_FILE={access.admin_token}   # the admin token")
    if exports:
        lines += ["  Point the CLI at it, then try `aorta list jobs`:", *exports]
    else:
        lines.append("  The CLI reaches it as is: try `aorta list jobs`.")
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


@contextmanager
def locked_data_dir(data_dir: Path) -> Iterator[None]:
    """Holds an exclusive lock on `data_dir` for the life of the platform."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lock_path = data_dir / "aorta.lock"
    with open(lock_path, "a+") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.seek(0)
            holder = lock_file.read().strip() or "another process"
            raise DataDirBusy(
                f"the data dir {data_dir} is in use by {holder}; stop it first or choose "
                "another --data-dir"
            ) from None
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write(f"aorta up (pid {os.getpid()})\n")
        lock_file.flush()
        yield


def scheduler_environ(environ: Mapping[str, str], choice: ExecutorChoice) -> dict[str, str]:
    """`environ` with the executor `aorta up` chose (and the engine that answered) written in,
    so that the scheduler runs exactly that one without probing again for `auto`."""
    chosen = {**environ, "AORTA_EXECUTOR": choice.kind}
    chosen.pop("AORTA_SCHEDULER_EXECUTOR", None)
    if choice.engine is not None:
        chosen["AORTA_CONTAINER_HOST"] = choice.engine.host
    return chosen


def web_environ(
    environ: Mapping[str, str], options: EmbeddedOptions, access: Access
) -> dict[str, str]:
    """`environ` with where the web console listens (the listen address, `--web-port`) and how
    it reaches the gateway: as clients do (`access`), trusting the CA `--tls auto` made."""
    chosen = {
        **environ,
        "AORTA_WEB_ADDRESS": f"{_bracketed(options.listen)}:{options.web_port}",
        "AORTA_WEB_GATEWAY": access.address,
    }
    if access.ca is not None:
        chosen["AORTA_WEB_GATEWAY_CA"] = str(access.ca)
    return chosen


def console_url(settings: Settings, access: Access, port: int) -> str:
    """The address people open the console at."""
    scheme = "https" if settings.gateway_tls else "http"
    return f"{scheme}://{access.address.rsplit(':', 1)[0]}:{port}/"


def metrics_url(settings: Settings, access: Access, port: int) -> str:
    """Where Prometheus scrapes the platform's metrics ("" when metrics are off)."""
    if not settings.metrics:
        return ""
    return f"http://{access.address.rsplit(':', 1)[0]}:{port}{METRICS_PATH}"


def with_environ(start: ServiceStarter, environ: Mapping[str, str]) -> ServiceStarter:
    """`start` reading its own settings from `environ` rather than the process environment
    (for a service whose `start` takes `environ`, as the scheduler's does)."""
    takes_environ = cast(Callable[..., Awaitable[Running]], start)
    return functools.partial(takes_environ, environ=environ)


async def run_embedded(
    options: EmbeddedOptions,
    environ: Mapping[str, str],
    stop: asyncio.Event | None = None,
    *,
    long_running: bool = False,
) -> None:
    """Runs the embedded platform until `stop` is set (or SIGTERM/SIGINT arrives);
    `long_running` as `run_services` takes it (`aorta up`, not tests)."""
    stop_event = stop or asyncio.Event()
    if stop is None:
        install_stop_signals(stop_event)
    base = Settings.from_env(environ)
    # Every service runs in this one process: one service name for all their spans.
    tracing.configure("aorta", environ)
    choice = await choose_executor(options.executor, environ)
    log.info("aorta.executor", executor=choice.kind, reason=choice.reason)
    private_data_dir(options.data_dir)
    # Before anything is written: on a full disk, the reserve's room is what lets it start.
    await asyncio.to_thread(settle_reserve, options.data_dir, base.disk_watermark)
    with locked_data_dir(options.data_dir):
        # Fresh passwords on every start: the services get theirs in memory, integrations
        # the events user's from the nats folder.
        credentials = generate_credentials(bus_users())
        nats = NatsServerProcess(
            options.data_dir / "nats", port=options.nats_port, users=credentials
        )
        async with nats:
            tls = auto_tls(options)
            settings = embedded_settings(base, options, nats.url, tls)
            # The event stream takes its share of the room its disk has now, so the bus starts
            # and leaves space to the payloads even on a nearly full disk.
            room = await asyncio.to_thread(room_for, nats.store_dir)
            events_bytes = event_stream_bytes(settings.events_max_bytes, room)
            settings = settings.with_changes(events_max_bytes=events_bytes)
            log.info("aorta.event_stream", max_bytes=events_bytes, room=room)
            access = prepare_access(settings, options, tls)

            # The health endpoint's port, once it serves (a default port taken: it does not).
            health: dict[str, int] = {}

            async def announce(running: dict[str, Running]) -> None:
                gateway = running.get("gateway")
                port = gateway.port if isinstance(gateway, Listening) else options.grpc_port
                web = running.get("web")
                url = console_url(settings, access, web.port) if isinstance(web, Listening) else ""
                scrape = metrics_url(settings, access, health["port"]) if health else ""
                lines = banner(
                    access,
                    settings,
                    port,
                    nats.url,
                    choice.reason,
                    log_file=options.log_file,
                    console_url=url,
                    metrics_url=scrape,
                )
                print(lines, file=sys.stdout, flush=True)

            own_environ = {
                "scheduler": scheduler_environ(environ, choice),
                "web": web_environ(environ, options, access),
            }
            starters = [
                (name, with_environ(start, own_environ[name]))
                if name in own_environ
                else (name, start)
                for name, start in registry.starters(registry.START_ORDER)
            ]
            await run_services(
                starters,
                settings,
                stop_event,
                on_ready=announce,
                credentials=registry.service_credentials(credentials),
                # The default port is best effort, so that two platforms on one machine (or
                # tests) still start; a port asked for must be had.
                health_optional=options.metrics_port is None,
                on_health=functools.partial(health.__setitem__, "port"),
                long_running=long_running,
            )
    tracing.shutdown()
    print("Aorta stopped.", file=sys.stdout, flush=True)
