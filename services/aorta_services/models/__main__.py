"""`python -m aorta_services.models`: run the models service alone (settings from AORTA_*)."""

from aorta.runtime.process import serve_services
from aorta_services.models.app import start

if __name__ == "__main__":
    serve_services([("models", start)])
