"""Settings of the retention sweep (the scheduler leader's), read beside `SchedulerSettings`.

Every limit is unset by default: nothing is removed unless a setting asks for it.

- `AORTA_RETENTION_JOBS_DAYS`: stopped jobs are deleted (record, logs, PIPELINE payload) this
  many days after they stopped.
- `AORTA_RETENTION_FAILED_JOBS_DAYS`: the same for jobs that failed (STOPPED/FAULTED), so they
  can be kept longer; unset, failed jobs follow `AORTA_RETENTION_JOBS_DAYS`.
- `AORTA_RETENTION_PAYLOADS_DAYS`: a stopped job's PIPELINE payload is deleted this many days
  after the job stopped, the job's record and logs kept (a failed job's payload stays as long
  as the job).
- `AORTA_RETENTION_MAX_GIB`: while the stopped jobs' payloads hold more than this many GiB,
  the oldest are deleted (those of failed jobs last).
- `AORTA_RETENTION_INTERVAL` (seconds, default 3600): how often the leader sweeps; it also
  sweeps when it takes the lease.

Days and GiB may be fractions; 0 is allowed (remove as soon as the job stopped and released
what it held).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from aorta.settings import EnvReader, SettingsError
from aorta_services.scheduler.domain.retention import RetentionPolicy

JOBS_DAYS = "AORTA_RETENTION_JOBS_DAYS"
FAILED_JOBS_DAYS = "AORTA_RETENTION_FAILED_JOBS_DAYS"
PAYLOADS_DAYS = "AORTA_RETENTION_PAYLOADS_DAYS"
MAX_GIB = "AORTA_RETENTION_MAX_GIB"
INTERVAL = "AORTA_RETENTION_INTERVAL"

GIB = 1 << 30


@dataclass(frozen=True)
class RetentionSettings:
    """See the module docstring."""

    policy: RetentionPolicy = field(default_factory=RetentionPolicy)
    interval: float = 3600.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RetentionSettings:
        """Reads the settings; `SettingsError` naming the variable that is wrong."""
        env = EnvReader(environ)

        def limit(name: str) -> float | None:
            if env.optional(name) is None:
                return None
            value = env.number(name, 0.0, minimum=0.0)
            if not math.isfinite(value):
                raise SettingsError(f"setting {name}={value!r} is not a finite number")
            return value

        max_gib = limit(MAX_GIB)
        return cls(
            policy=RetentionPolicy(
                jobs_days=limit(JOBS_DAYS),
                failed_jobs_days=limit(FAILED_JOBS_DAYS),
                payloads_days=limit(PAYLOADS_DAYS),
                max_bytes=None if max_gib is None else int(max_gib * GIB),
            ),
            interval=env.number(INTERVAL, 3600.0, minimum=1.0),
        )
