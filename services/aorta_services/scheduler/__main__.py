"""`python -m aorta_services.scheduler`: run the scheduler service alone (settings from AORTA_*)."""

from aorta.runtime.process import serve_services
from aorta_services.scheduler.app import start

if __name__ == "__main__":
    serve_services([("scheduler", start)])
