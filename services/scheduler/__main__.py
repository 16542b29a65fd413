"""`python -m aorta.services.scheduler`: run the scheduler service alone (settings from AORTA_*)."""

from aorta.services.process import serve_services

if __name__ == "__main__":
    serve_services(["scheduler"])
