"""The models service's own settings, beside the core `aorta.settings.Settings`.

`ServiceContext` carries only the core settings, so these are read from an environment mapping
handed to `app.start` (the process environment by default), as the monitor does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aorta.settings import EnvReader
from aorta.triton.archive import ArchiveLimits


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
    """

    models_per_server: int = 8
    pool_size: int = 2
    idle_seconds: float = 600.0
    max_servers: int = 16


@dataclass(frozen=True)
class ModelsSettings:
    """Everything the models service reads besides the core settings.

    Pool: see `PoolSettings`. Local backend:

    - `AORTA_TRITON_BACKEND` (`local`): where servers run; `local` starts tritonserver child
      processes; `kubernetes` runs each server as a Deployment and Service (docs/kubernetes.md).
    - `AORTA_TRITON_HOME` (default: the nvidia-pytriton wheel's tree): a Triton tree with
      `bin/tritonserver` and `backends/python/`.
    - `AORTA_TRITON_PYTHON_ENV` (default: this process's virtualenv): the Python environment
      models run in (its `bin/python3`); it needs numpy 1.x.
    - `AORTA_TRITON_START_TIMEOUT` (seconds, default 60): how long a new server may take to
      become ready.
    - `AORTA_TRITON_LOAD_TIMEOUT` (seconds, default 300): how long one model may take to load.
    - `AORTA_TRITON_STOP_GRACE` (seconds, default 15): SIGTERM to SIGKILL.

    Uploads (see `aorta.triton.archive`):

    - `AORTA_MODELS_MAX_MEMBERS` (default 10000): entries one archive may hold.
    - `AORTA_MODELS_MAX_UNCOMPRESSED_BYTES` (default 16 GiB): what it may expand to.
    """

    pool: PoolSettings
    limits: ArchiveLimits
    backend: str = "local"
    triton_home: Path | None = None
    python_env: Path | None = None
    start_timeout: float = 60.0
    load_timeout: float = 300.0
    stop_grace: float = 15.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ModelsSettings:
        """Reads the settings; `SettingsError` naming the variable that is wrong."""
        env = EnvReader(environ)
        home = env.optional("AORTA_TRITON_HOME")
        python_env = env.optional("AORTA_TRITON_PYTHON_ENV")
        return cls(
            pool=PoolSettings(
                models_per_server=env.integer("AORTA_TRITON_MODELS_PER_SERVER", 8, minimum=1),
                pool_size=env.integer("AORTA_TRITON_POOL_SIZE", 2, minimum=0),
                idle_seconds=env.number("AORTA_TRITON_IDLE_SECONDS", 600.0, minimum=0.0),
                max_servers=env.integer("AORTA_TRITON_MAX_SERVERS", 16, minimum=1),
            ),
            limits=ArchiveLimits(
                max_members=env.integer("AORTA_MODELS_MAX_MEMBERS", 10_000, minimum=1),
                max_uncompressed_bytes=env.integer(
                    "AORTA_MODELS_MAX_UNCOMPRESSED_BYTES", 16 * 1024**3, minimum=1
                ),
            ),
            backend=env.choice("AORTA_TRITON_BACKEND", "local", ("local", "kubernetes")),
            triton_home=Path(home) if home else None,
            python_env=Path(python_env) if python_env else None,
            start_timeout=env.number("AORTA_TRITON_START_TIMEOUT", 60.0, minimum=1.0),
            load_timeout=env.number("AORTA_TRITON_LOAD_TIMEOUT", 300.0, minimum=1.0),
            stop_grace=env.number("AORTA_TRITON_STOP_GRACE", 15.0, minimum=0.0),
        )
