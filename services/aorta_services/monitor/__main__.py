"""`python -m aorta_services.monitor`: run the monitor service alone (settings from AORTA_*)."""

from aorta.runtime.process import serve_services
from aorta_services.monitor.app import start

if __name__ == "__main__":
    serve_services([("monitor", start)])
