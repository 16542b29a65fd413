"""What every service process runs on: the context a service starts with and the handle it
returns (`service`), the loop that runs services in one process (`process`) and its HTTP
health endpoint (`health`)."""

from aorta.runtime.service import (
    Listening,
    Running,
    RunningService,
    ServiceContext,
    ServiceStarter,
    service_context,
)

__all__ = [
    "Listening",
    "Running",
    "RunningService",
    "ServiceContext",
    "ServiceStarter",
    "service_context",
]
