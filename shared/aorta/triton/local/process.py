"""One `tritonserver` child process: started on free ports of 127.0.0.1, health-checked, stopped.

The server runs with `--model-control-mode=explicit`, so it loads nothing until asked. Given
GPUs (node device indices), it sees exactly those through `CUDA_VISIBLE_DEVICES` and gets CUDA
memory pools on them and a pinned host pool; given none, it runs with the CPU-only flags of
docs/test-infrastructure.md (no pinned or CUDA memory pools, no GPU metrics) and sees no GPU
(`aorta.triton.server_flags`). Its output goes to a log file of its own. On Linux the child
gets SIGTERM when the thread that started it ends (PR_SET_PDEATHSIG, armed by
`aorta.children.process`'s trampoline, as for nats-server), so a models service killed with
SIGKILL leaves no server behind; Triton then stops its Python backend stubs itself.

The process is run by `aorta.children.process.ChildProcess`. Its ports come from
`aorta.children.ports` (bound as port 0, then closed), which another process may race for: a start
that fails because a port was taken meanwhile is retried on new ports. Given a user to switch to,
it runs as that user; its environment never holds the platform's own variables
(`aorta.triton.local.confinement`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from aorta.children.ports import free_ports
from aorta.children.process import ChildProcess, ChildStartError
from aorta.children.readiness import HttpReady
from aorta.errors import Unavailable
from aorta.executors.local.operator_user import OperatorUser
from aorta.logger import get_logger
from aorta.triton.local.confinement import server_environment
from aorta.triton.local.install import TritonInstall
from aorta.triton.server_flags import Listen, MemoryPools, device_environment, server_flags

HOST = "127.0.0.1"
START_ATTEMPTS = 3
_PORT_TAKEN = "already in use"

_log = get_logger(__name__)


class TritonProcess:
    """A tritonserver child process serving the model repository `repository`, as `user` when
    the platform switches to it (else as the platform's user).

    `start` returns once `/v2/health/ready` answers 200, or raises `Unavailable` with the tail
    of the server's log after `start_timeout` seconds or when the server exits; a failed or
    cancelled start SIGKILLs the server's process group (it and its backend stubs) and leaves
    nothing behind. `stop` sends SIGTERM, waits `stop_grace` seconds (Triton unloads its
    models, waiting up to its own `--exit-timeout-secs=10`), then SIGKILLs the process group;
    it is idempotent.
    """

    def __init__(
        self,
        install: TritonInstall,
        *,
        repository: Path,
        backends: Path,
        log_file: Path,
        environ: Mapping[str, str],
        user: OperatorUser | None = None,
        home: Path | None = None,
        gpus: Sequence[int] = (),
        pools: MemoryPools | None = None,
        start_timeout: float = 60.0,
        stop_grace: float = 15.0,
    ) -> None:
        self._install = install
        self._repository = repository
        self._backends = backends
        self.gpus = tuple(gpus)
        self._pools = pools or MemoryPools()
        self.log_file = log_file
        self.environment = server_environment(
            install, device_environment(self.gpus), home or log_file.parent, environ
        )
        """The server's whole environment: the install's paths, its devices, `HOME` and
        `TMPDIR` in `home` (the log's folder when None), and the host variables of `environ`
        that `confinement.HOST_VARIABLES` names."""
        run_as = user if user is not None and user.switch else None
        self._child = ChildProcess(
            "tritonserver",
            log_file,
            environ=self.environment,
            user=run_as.uid if run_as else None,
            group=run_as.gid if run_as else None,
            start_timeout=start_timeout,
            stop_grace=stop_grace,
        )
        self._ports: tuple[int, ...] = (0, 0, 0)

    @property
    def http_uri(self) -> str:
        return f"{HOST}:{self._ports[0]}"

    @property
    def grpc_uri(self) -> str:
        return f"{HOST}:{self._ports[1]}"

    @property
    def pid(self) -> int | None:
        return self._child.pid

    def alive(self) -> bool:
        return self._child.alive()

    async def start(self) -> None:
        for attempt in range(1, START_ATTEMPTS + 1):
            ports = free_ports(3)
            ready = HttpReady((HOST, ports[0]), "/v2/health/ready", awaited="become ready")
            try:
                await self._child.start(self.command(*ports), ready)
            except ChildStartError as error:
                if _PORT_TAKEN in (error.log_tail or "") and attempt < START_ATTEMPTS:
                    _log.info("triton.port_taken_retrying", attempt=attempt)
                    continue
                messages = [error.reason]
                if error.log_tail is not None:
                    # The log's name only: the message reaches the platform's clients.
                    messages.append(f"last lines of {self.log_file.name}:\n{error.log_tail}")
                raise Unavailable(*messages) from None
            self._ports = ports
            _log.info(
                "triton.started",
                pid=self.pid,
                grpc=self.grpc_uri,
                http=self.http_uri,
                gpus=list(self.gpus),
            )
            return

    async def stop(self) -> None:
        await self._child.stop()

    def command(self, http: int, grpc: int, metrics: int) -> list[str]:
        """The server's command line on these ports."""
        flags = server_flags(
            repository=str(self._repository),
            listen=Listen(HOST, http, grpc, metrics),
            gpus=self.gpus,
            pools=self._pools,
            backends=str(self._backends),
        )
        return [str(self._install.binary), *flags]
