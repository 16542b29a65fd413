"""The platform split into processes as it is deployed, for tests and benchmarks.

A nats-server and one `aorta serve NAME` process per replica, every replica on one SQLite file
and one blob folder (`AORTA_DATA_DIR`). Each replica serves its health endpoint on a port of
its own, and `launch` returns once it answers `/healthz/ready`; a gateway also gets a gRPC port.
Those ports are drawn below the kernel's ephemeral range and never twice for one platform: the
replicas start at once, and a port handed to one that has not bound it yet must not go to the
next one started, nor to an outgoing connection of any of them.
Every process still running is stopped with SIGTERM (then SIGKILL) on exit, and each one's
output goes to `<folder>/<service>-<n>.log`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aorta.testing.nats import nats_server
from aorta.testing.ports import PortPool

AORTA = Path(sys.executable).parent / "aorta"


@dataclass
class Replica:
    """One service process; `grpc_port` is a gateway's public port (0 for other services)."""

    service: str
    process: subprocess.Popen[bytes]
    health_port: int
    grpc_port: int = 0

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, and waits until it is gone."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


@dataclass
class SplitPlatform:
    """Service replicas started by `launch`, on one bus, store and blob folder."""

    folder: Path
    environ: dict[str, str]
    replicas: list[Replica] = field(default_factory=list)
    ports: PortPool = field(default_factory=PortPool)

    def launch(self, service: str, *, within: float = 90.0) -> Replica:
        """Starts one more replica of `service`; returns once it is ready."""
        replica = self.start(service)
        _wait_ready(replica, within)
        return replica

    def start(self, service: str) -> Replica:
        """Starts one more replica of `service` without waiting for it (see `ready`)."""
        number = sum(1 for r in self.replicas if r.service == service) + 1
        health = self.ports.take()
        env = {**self.environ, "AORTA_HEALTH_PORT": str(health)}
        grpc_port = self.ports.take() if service == "gateway" else 0
        if grpc_port:
            env["AORTA_GRPC_ADDRESS"] = f"127.0.0.1:{grpc_port}"
        with (self.folder / f"{service}-{number}.log").open("ab") as log:
            process = subprocess.Popen(
                [str(AORTA), "serve", service],
                env={**os.environ, "AORTA_LOG_FORMAT": "json", **env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        replica = Replica(service, process, health, grpc_port)
        self.replicas.append(replica)
        return replica

    def ready(self, replicas: list[Replica], *, within: float = 90.0) -> None:
        """Returns once every one of `replicas` is ready."""
        for replica in replicas:
            _wait_ready(replica, within)

    def of(self, service: str) -> list[Replica]:
        """The live replicas of `service`, in launch order."""
        return [r for r in self.replicas if r.service == service and r.alive]

    @property
    def gateways(self) -> list[str]:
        """The gRPC targets of the live gateways."""
        return [f"127.0.0.1:{r.grpc_port}" for r in self.of("gateway")]

    def stop_all(self) -> None:
        """SIGTERM to every live replica, SIGKILL to those still running after 30 s."""
        for replica in self.replicas:
            if replica.alive:
                replica.process.send_signal(signal.SIGTERM)
        for replica in self.replicas:
            try:
                replica.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait()


@contextlib.contextmanager
def split_platform(
    folder: Path, counts: Mapping[str, int], environ: Mapping[str, str] | None = None
) -> Iterator[SplitPlatform]:
    """A nats-server and `counts[service]` replicas of each service, gateways last (they answer
    clients only once every service they forward to is ready). `environ` adds settings."""
    folder.mkdir(parents=True, exist_ok=True)
    with nats_server(folder / "nats") as nats:
        env = {
            "AORTA_DATA_DIR": str(folder / "data"),
            "AORTA_NATS_URL": nats.url,
            "AORTA_EXECUTOR": "local",
            **(environ or {}),
        }
        platform = SplitPlatform(folder, env)
        try:
            for gateways in (False, True):
                started = [
                    platform.start(service)
                    for service, count in counts.items()
                    if (service == "gateway") is gateways
                    for _ in range(count)
                ]
                platform.ready(started)
            yield platform
        finally:
            platform.stop_all()


def _wait_ready(replica: Replica, within: float) -> None:
    url = f"http://127.0.0.1:{replica.health_port}/healthz/ready"
    deadline = time.monotonic() + within
    while True:
        if not replica.alive:
            raise RuntimeError(
                f"aorta serve {replica.service} exited with status {replica.process.returncode}"
            )
        with (
            contextlib.suppress(urllib.error.URLError, OSError),
            urllib.request.urlopen(url, timeout=1) as answer,
        ):
            if answer.status == 200:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"aorta serve {replica.service} was not ready within {within} s")
        time.sleep(0.1)
