"""`python -m aorta.services.monitor`: run the monitor service alone (settings from AORTA_*)."""

from aorta.services.process import serve_services

if __name__ == "__main__":
    serve_services(["monitor"])
