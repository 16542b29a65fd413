"""`python -m aorta.services.gateway`: run the gateway service alone (settings from AORTA_*)."""

from aorta.services.main import serve_services

if __name__ == "__main__":
    serve_services(["gateway"])
