"""Settings of the container executor (`AORTA_CONTAINER_*`).

Read from an injected mapping (only a `__main__` reads `os.environ`); every variable is listed in
`ContainerSettings`' docstring and in docs/settings.md. Which engine to talk to
(`AORTA_CONTAINER_HOST`) is `aorta.executors.engine_probe`'s business.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from aorta.settings import EnvReader, SettingsError

_LABEL_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class PullPolicy(StrEnum):
    """When an operator's image is pulled before its container is created (Kubernetes' names)."""

    IF_NOT_PRESENT = "IfNotPresent"
    ALWAYS = "Always"
    NEVER = "Never"


@dataclass(frozen=True)
class ContainerSettings:
    """How operator containers are made.

    - `AORTA_CONTAINER_PULL_POLICY` (default `IfNotPresent`; `Always`, `Never`): when the
      operator's image is pulled. `Never` runs images already in the engine's storage only
      (locally built ones, `localhost/...` or tags made with `podman tag`).
    - `AORTA_CONTAINER_AUTH_FILE` (default none): a Docker `config.json`-style file whose
      `auths` hold registry credentials; a pipeline's `pull-secrets` name its entries (see
      `aorta.executors.container.pull`). The file is read at each pull, never logged.
    - `AORTA_CONTAINER_INSTANCE` (default `aorta`): the `aorta.instance` label of every
      container made, so two platforms sharing one engine never adopt each other's containers.
    - `AORTA_CONTAINER_STOP_GRACE` (seconds, default 15): between SIGTERM and SIGKILL when a
      run passes its timeout (Clara's grace); a cancel uses the grace the scheduler passes.
    - `AORTA_CONTAINER_SERVICE_NETWORK` (default `host`): the network of an operator that
      must reach Triton or a pipeline service (their addresses are on the host's loopback);
      every other operator has no network at all (docs/security.md, "Operators").
    - `AORTA_CONTAINER_KEEP` (default false): keep finished containers (for debugging) rather
      than removing them once their outcome and outputs are stored.
    - `AORTA_CONTAINER_LOG_FLUSH_INTERVAL` (seconds, default 1): between pushes of a running
      operator's log to the blob store.
    """

    pull_policy: PullPolicy = PullPolicy.IF_NOT_PRESENT
    auth_file: Path | None = None
    instance: str = "aorta"
    stop_grace: float = 15.0
    service_network: str = "host"
    keep_containers: bool = False
    log_flush_interval: float = 1.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ContainerSettings:
        """Reads the settings; `SettingsError` names the variable that is wrong."""
        env = EnvReader(environ)
        policy = env.choice(
            "AORTA_CONTAINER_PULL_POLICY",
            cls.pull_policy.value,
            tuple(policy.value for policy in PullPolicy),
        )
        auth_file = env.optional("AORTA_CONTAINER_AUTH_FILE")
        settings = cls(
            pull_policy=PullPolicy(policy),
            auth_file=Path(auth_file).expanduser() if auth_file else None,
            instance=env.text("AORTA_CONTAINER_INSTANCE", cls.instance),
            stop_grace=env.number("AORTA_CONTAINER_STOP_GRACE", cls.stop_grace, minimum=0),
            service_network=env.text("AORTA_CONTAINER_SERVICE_NETWORK", cls.service_network),
            keep_containers=env.boolean("AORTA_CONTAINER_KEEP", cls.keep_containers),
            log_flush_interval=env.number(
                "AORTA_CONTAINER_LOG_FLUSH_INTERVAL", cls.log_flush_interval, minimum=0.01
            ),
        )
        if not _LABEL_VALUE.match(settings.instance):
            raise SettingsError(
                f"setting AORTA_CONTAINER_INSTANCE={settings.instance!r} must be 1 to 63 "
                "letters, digits, '_', '.' or '-', starting with a letter or digit"
            )
        return settings
