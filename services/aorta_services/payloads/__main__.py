"""`python -m aorta_services.payloads`: run the payloads service alone (AORTA_* settings)."""

from aorta.runtime.process import serve_services
from aorta_services.payloads.app import start

if __name__ == "__main__":
    serve_services([("payloads", start)])
