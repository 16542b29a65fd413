"""`python -m aorta_services.gateway`: run the gateway service alone (settings from AORTA_*)."""

from aorta.runtime.process import serve_services
from aorta_services.gateway.app import start

if __name__ == "__main__":
    serve_services([("gateway", start)])
