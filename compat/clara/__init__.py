"""Clara pipeline driver compatibility: `import clara` for operators written for Clara.

`from clara import Driver, Error, Payload, PayloadEntry` gives Aorta's driver under Clara's
names; `clara.Error` is `aorta.driver.DriverError`.
"""

from aorta.driver import (
    Driver,
    DriverEvent,
    Notification,
    Payload,
    PayloadEntry,
    Severity,
)
from aorta.driver import DriverError as Error

__all__ = ["Driver", "DriverEvent", "Error", "Notification", "Payload", "PayloadEntry", "Severity"]
