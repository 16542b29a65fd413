"""`python -m aorta_services.pipelines`: run the pipelines service alone (AORTA_* settings)."""

from aorta.runtime.process import serve_services
from aorta_services.pipelines.app import start

if __name__ == "__main__":
    serve_services([("pipelines", start)])
