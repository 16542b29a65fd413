"""The monitor's own settings, beside the core `aorta.settings.Settings` every service gets.

`ServiceContext` carries only the core settings, so the monitor reads these from an environment
mapping handed to `app.start` (the process environment by default).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aorta.settings import EnvReader, SettingsError

INTERVAL_VARIABLE = "AORTA_MONITOR_INTERVAL"
NODE_ID_VARIABLE = "AORTA_NODE_ID"
MINIMUM_INTERVAL = 0.1


@dataclass(frozen=True)
class MonitorSettings:
    """How often a node's GPUs are read and under which name the node reports.

    - `AORTA_MONITOR_INTERVAL` (seconds, default 1, at least 0.1): the sampling period, which is
      also the period of a `Clara.Utilization` watch stream. It must stay below the bus request
      timeout (`AORTA_RPC_TIMEOUT`), which bounds the wait for each item of a stream.
    - `AORTA_NODE_ID` (default: the host name): the node's name in `GpuUtilization.node_id`;
      one monitor runs per node, so every node needs a distinct name (on Kubernetes, the pod's
      `spec.nodeName` through the downward API).
    """

    interval: float = 1.0
    node_id: str = "localhost"

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str],
        *,
        rpc_timeout: float,
        hostname: Callable[[], str] = socket.gethostname,
    ) -> MonitorSettings:
        """Reads the settings; raises `SettingsError` naming the variable that is wrong."""
        env = EnvReader(environ)
        interval = env.number(INTERVAL_VARIABLE, 1.0, minimum=MINIMUM_INTERVAL)
        if interval >= rpc_timeout:
            raise SettingsError(
                f"setting {INTERVAL_VARIABLE}={interval:g} must be below AORTA_RPC_TIMEOUT="
                f"{rpc_timeout:g}: a Utilization watch stream would time out between snapshots"
            )
        return cls(interval=interval, node_id=env.text(NODE_ID_VARIABLE, hostname()))
