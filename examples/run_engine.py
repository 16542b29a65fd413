"""Where `make run` runs the example's operators: in containers when it can, on the host if not.

1. `AORTA_EXECUTOR=local` (e.g. `make run AORTA_EXECUTOR=local`) asks for host processes.
2. A container engine that already answers (at `AORTA_CONTAINER_HOST`, `DOCKER_HOST` or the
   usual Docker and Podman sockets) is used as it is.
3. Otherwise, when podman is installed, a Podman API service is started for this run on a
   socket of its own under the run's folder, over the host's image storage (where
   `make images` put the example's images), and stopped when the run ends.
4. Otherwise (or when that service cannot start, or the engine lacks the example's images)
   the operators run as host processes.

Either way `RunEngine.note` says which and why, for the run's output.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from aorta.children.process import ChildProcess
from aorta.children.readiness import HttpReady
from aorta.errors import Unavailable
from aorta.executors.engine_probe import detect, has_image
from aorta.testing.podman import PodmanCli

EXAMPLE_IMAGES = ("reader", "segmentation", "writer")
"""The example's operators; each runs in `aorta/example-<name>:0.1.0` (`make images`)."""


@dataclass(frozen=True)
class RunEngine:
    """The executor `aorta up` is given (`container` or `local`), the engine's address for
    containers, and a sentence saying why."""

    executor: str
    host: str | None
    note: str

    def environ(self) -> dict[str, str]:
        """What `aorta up` needs in its environment to reach the engine."""
        return {"AORTA_CONTAINER_HOST": self.host} if self.host else {}


@contextmanager
def engine_for_run(folder: Path, environ: Mapping[str, str]) -> Iterator[RunEngine]:
    """Chooses where the run's operators run (see the module's docstring); a Podman service
    started here is stopped when the `with` ends. An engine that lacks the example's images
    (`make images` builds them) leaves the run on host processes, saying so."""
    if environ.get("AORTA_EXECUTOR") == "local":
        yield RunEngine("local", None, "operators run as host processes (AORTA_EXECUTOR=local)")
        return
    found = asyncio.run(detect(environ))
    if found.engine is not None:
        yield with_images(RunEngine("container", found.engine.host, found.describe()))
        return
    if shutil.which("podman") is None:
        yield RunEngine("local", None, f"{found.describe()}; install podman to use containers")
        return
    with ExitStack() as stack:
        try:
            socket = stack.enter_context(podman_service(folder))
        except Unavailable as error:
            yield RunEngine(
                "local", None, f"operators run as host processes: podman could not serve: {error}"
            )
            return
        engine = with_images(
            RunEngine(
                "container",
                f"unix://{socket}",
                "operators run in containers: no container engine was running, so this run "
                f"started `podman system service` on {socket} (stopped at the end)",
            )
        )
        if engine.executor == "container":
            yield engine
            return
    # Stopped before the run: the service has nothing to serve without the images.
    yield engine


def with_images(engine: RunEngine) -> RunEngine:
    """`engine`, or host processes when its engine lacks one of the example's images."""
    missing = missing_images(engine.host) if engine.host else []
    if not missing:
        return engine
    return RunEngine(
        "local",
        None,
        f"operators run as host processes: the container engine at {engine.host} lacks "
        f"{', '.join(missing)} (`make images` builds them)",
    )


@contextmanager
def podman_service(folder: Path) -> Iterator[Path]:
    """`podman system service` on `folder/podman.sock` over the host's image storage, with the
    repository's containers.conf, until the `with` ends. `PodmanError` when it cannot start."""
    folder.mkdir(parents=True, exist_ok=True)
    socket = folder / "podman.sock"
    socket.unlink(missing_ok=True)
    podman = PodmanCli.host()
    child = ChildProcess(
        "podman system service",
        folder / "podman-service.log",
        environ=podman.environ,
        start_timeout=30.0,
        stop_grace=5.0,
    )
    command = podman.argv("system", "service", "--time=0", f"unix://{socket}")
    child.start_blocking(command, HttpReady(socket, "/_ping"))
    try:
        yield socket
    finally:
        child.stop_blocking()


def missing_images(host: str) -> list[str]:
    """The example's images the engine at `host` lacks."""

    async def lacking() -> list[str]:
        names = [f"aorta/example-{name}:0.1.0" for name in EXAMPLE_IMAGES]
        held = await asyncio.gather(*(has_image(host, name) for name in names))
        return [name for name, present in zip(names, held, strict=True) if not present]

    return asyncio.run(lacking())
