"""`python -m aorta_services.web`: run the web console alone (settings from AORTA_*)."""

from aorta.runtime.process import serve_services
from aorta_services.web.app import start

if __name__ == "__main__":
    serve_services([("web", start)])
