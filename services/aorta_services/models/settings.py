"""The models service's own settings, beside the core `aorta.settings.Settings`.

`ServiceContext` carries only the core settings, so these are read from an environment mapping
handed to `app.start` (the process environment by default), as the monitor does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aorta.settings import EnvReader, SettingsError
from aorta.triton.archive import ArchiveLimits
from aorta.triton.server_flags import (
    DEFAULT_CUDA_POOL_BYTES,
    DEFAULT_PINNED_POOL_BYTES,
    MemoryPools,
)

TRITON_GPUS = "AORTA_TRITON_GPUS"
SCHEDULER_GPUS = "AORTA_SCHEDULER_GPUS"


@dataclass(frozen=True)
class PoolSettings:
    """How the Triton pool shares and keeps servers.

    - `AORTA_TRITON_MODELS_PER_SERVER` (default 8, Clara's `modelLimits`): most models one
      server holds; one acquire may not ask for more.
    - `AORTA_TRITON_POOL_SIZE` (default 2): idle servers kept warm after their jobs released
      them; beyond that the least recently released are stopped at once.
    - `AORTA_TRITON_IDLE_SECONDS` (default 600): an idle server is stopped after this long.
    - `AORTA_TRITON_MAX_SERVERS` (default 16): most servers at once, held and idle together; an
      acquire beyond it fails with SERVICE_UNAVAILABLE.
    - `AORTA_TRITON_GPUS`: the node's GPUs Triton servers may use (device indices as NVML counts
      them): a count (`2` means devices 0 and 1), a list (`0,2`; one index as `3,`) or `none`
      (every server runs on the CPU); default: `AORTA_SCHEDULER_GPUS` when set, else every GPU
      NVML sees (None here: the service asks NVML when it starts).
    - `AORTA_TRITON_GPUS_PER_SERVER` (default 1): devices each new server gets; 0 runs every
      server on the CPU.
    """

    models_per_server: int = 8
    pool_size: int = 2
    idle_seconds: float = 600.0
    max_servers: int = 16
    gpus: tuple[int, ...] | None = None
    gpus_per_server: int = 1


@dataclass(frozen=True)
class ModelsSettings:
    """Everything the models service reads besides the core settings.

    Pool: see `PoolSettings`. Local backend:

    - `AORTA_TRITON_BACKEND` (`local`): where servers run; `local` starts tritonserver child
      processes; `container` runs each server as a container of `AORTA_TRITON_IMAGE` on the
      container engine (`AORTA_CONTAINER_HOST`, else `DOCKER_HOST`, else the usual sockets);
      `kubernetes` runs each server as a Deployment and Service (docs/kubernetes.md).
    - `AORTA_TRITON_IMAGE` (default none): a Triton image such as
      `nvcr.io/nvidia/tritonserver:24.08-py3`; setting it with the `local` backend selects
      `container`.
    - `AORTA_TRITON_CUDA_MEMORY_POOL_BYTES` (default 64 MiB, Triton's own): the CUDA memory pool
      of a server on each of its GPUs.
    - `AORTA_TRITON_PINNED_MEMORY_POOL_BYTES` (default 256 MiB, Triton's own): the pinned host
      memory pool of a server with GPUs (a server without GPUs gets none).
    - `AORTA_TRITON_HOME` (default: the nvidia-pytriton wheel's tree): a Triton tree with
      `bin/tritonserver` and `backends/python/`.
    - `AORTA_TRITON_RUN_AS` (default `aorta-triton`): the user local tritonservers of a root
      platform run as, a name or `uid[:gid]`; `root` opts out (see
      `aorta.triton.local.confinement`).
    - `AORTA_TRITON_PYTHON_ENV` (default: this process's virtualenv): the Python environment
      models run in (its `bin/python3`); it needs numpy 1.x.
    - `AORTA_TRITON_START_TIMEOUT` (seconds, default 60): how long a new server may take to
      become ready.
    - `AORTA_TRITON_LOAD_TIMEOUT` (seconds, default 300): how long one model may take to load.
    - `AORTA_TRITON_STOP_GRACE` (seconds, default 15): SIGTERM to SIGKILL.
    - `AORTA_MODELS_REPLICA_TTL` (seconds, default 15): how long a replica's heartbeat lasts,
      so how long after a replica dies its Triton claims and records are taken over.

    Uploads (see `aorta.triton.archive`):

    - `AORTA_MODELS_MAX_MEMBERS` (default 10000): entries one archive may hold.
    - `AORTA_MODELS_MAX_UNCOMPRESSED_BYTES` (default 16 GiB): what it may expand to.
    """

    pool: PoolSettings
    limits: ArchiveLimits
    backend: str = "local"
    image: str | None = None
    memory_pools: MemoryPools = field(default_factory=MemoryPools)
    triton_home: Path | None = None
    python_env: Path | None = None
    run_as: str = "aorta-triton"
    start_timeout: float = 60.0
    load_timeout: float = 300.0
    stop_grace: float = 15.0
    replica_ttl: float = 15.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ModelsSettings:
        """Reads the settings; `SettingsError` naming the variable that is wrong."""
        env = EnvReader(environ)
        home = env.optional("AORTA_TRITON_HOME")
        python_env = env.optional("AORTA_TRITON_PYTHON_ENV")
        image = env.optional("AORTA_TRITON_IMAGE")
        backend = env.choice("AORTA_TRITON_BACKEND", "local", ("local", "container", "kubernetes"))
        if backend == "local" and image:
            backend = "container"
        if backend == "container" and not image:
            raise SettingsError(
                "setting AORTA_TRITON_BACKEND=container needs AORTA_TRITON_IMAGE, the Triton "
                "image to run (such as nvcr.io/nvidia/tritonserver:24.08-py3)"
            )
        return cls(
            pool=PoolSettings(
                models_per_server=env.integer("AORTA_TRITON_MODELS_PER_SERVER", 8, minimum=1),
                pool_size=env.integer("AORTA_TRITON_POOL_SIZE", 2, minimum=0),
                idle_seconds=env.number("AORTA_TRITON_IDLE_SECONDS", 600.0, minimum=0.0),
                max_servers=env.integer("AORTA_TRITON_MAX_SERVERS", 16, minimum=1),
                gpus=triton_gpus(environ),
                gpus_per_server=env.integer("AORTA_TRITON_GPUS_PER_SERVER", 1, minimum=0),
            ),
            limits=ArchiveLimits(
                max_members=env.integer("AORTA_MODELS_MAX_MEMBERS", 10_000, minimum=1),
                max_uncompressed_bytes=env.integer(
                    "AORTA_MODELS_MAX_UNCOMPRESSED_BYTES", 16 * 1024**3, minimum=1
                ),
            ),
            backend=backend,
            image=image,
            memory_pools=MemoryPools(
                cuda_bytes=env.integer(
                    "AORTA_TRITON_CUDA_MEMORY_POOL_BYTES", DEFAULT_CUDA_POOL_BYTES, minimum=0
                ),
                pinned_bytes=env.integer(
                    "AORTA_TRITON_PINNED_MEMORY_POOL_BYTES", DEFAULT_PINNED_POOL_BYTES, minimum=0
                ),
            ),
            triton_home=Path(home) if home else None,
            python_env=Path(python_env) if python_env else None,
            run_as=env.text("AORTA_TRITON_RUN_AS", "aorta-triton"),
            start_timeout=env.number("AORTA_TRITON_START_TIMEOUT", 60.0, minimum=1.0),
            load_timeout=env.number("AORTA_TRITON_LOAD_TIMEOUT", 300.0, minimum=1.0),
            stop_grace=env.number("AORTA_TRITON_STOP_GRACE", 15.0, minimum=0.0),
            replica_ttl=env.number("AORTA_MODELS_REPLICA_TTL", 15.0, minimum=0.3),
        )


def triton_gpus(environ: Mapping[str, str]) -> tuple[int, ...] | None:
    """`AORTA_TRITON_GPUS` (else `AORTA_SCHEDULER_GPUS`) as device indices; None when neither
    is set (every GPU NVML sees). `SettingsError` naming the variable when malformed."""
    name = TRITON_GPUS if environ.get(TRITON_GPUS, "").strip() else SCHEDULER_GPUS
    raw = environ.get(name, "")
    text = raw.strip()
    if not text:
        return None
    if text.lower() == "none":
        return ()
    if "," not in text:
        if not text.isdigit():
            raise SettingsError(
                f"setting {name}={raw!r} is neither a GPU count, a list of device indices nor "
                "none (write 2 for devices 0 and 1, 0,2 for those devices)"
            )
        return tuple(range(int(text)))
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items or not all(item.isdigit() for item in items):
        raise SettingsError(f"setting {name}={raw!r} is not a list of device indices such as 0,2")
    indices = tuple(int(item) for item in items)
    if len(set(indices)) != len(indices):
        raise SettingsError(f"setting {name}={raw!r} names a device twice")
    return indices
