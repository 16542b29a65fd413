"""Settings of pipeline services (the scheduler's), read beside `SchedulerSettings`.

- `AORTA_SERVICE_IDLE_SECONDS` (default 600): how long a service no queued or running job
  needs keeps running before it is stopped.
- `AORTA_SERVICE_READY_TIMEOUT` (seconds, default 300): how long a starting service has to
  accept connections on its ports (or, without ports, to stay up) before the jobs waiting on
  it fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aorta.settings import EnvReader

IDLE_SECONDS = "AORTA_SERVICE_IDLE_SECONDS"
READY_TIMEOUT = "AORTA_SERVICE_READY_TIMEOUT"


@dataclass(frozen=True)
class ServiceSettings:
    """See the module docstring."""

    idle_seconds: float = 600.0
    ready_timeout: float = 300.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ServiceSettings:
        """Reads the settings; `SettingsError` naming the variable that is wrong."""
        env = EnvReader(environ)
        return cls(
            idle_seconds=env.number(IDLE_SECONDS, 600.0, minimum=0.0),
            ready_timeout=env.number(READY_TIMEOUT, 300.0, minimum=0.1),
        )
