"""The operator SDK: Clara's Pipeline Driver API (`Driver`, `Payload`, `PayloadEntry`).

Operator scripts use it directly or, unchanged from Clara, through `import clara`; the runner
(`python -m aorta.driver.app script.py`, also `nvidia_clara_pipeline_driver.app`) runs a script
with the global `clara_payload`.
"""

from aorta.driver.driver import (
    Driver,
    DriverError,
    DriverEvent,
    Notification,
    Severity,
)
from aorta.driver.payload import Payload, PayloadEntry

__all__ = [
    "Driver",
    "DriverError",
    "DriverEvent",
    "Notification",
    "Payload",
    "PayloadEntry",
    "Severity",
]
