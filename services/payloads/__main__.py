"""`python -m aorta.services.payloads`: run the payloads service alone (AORTA_* settings)."""

from aorta.services.process import serve_services

if __name__ == "__main__":
    serve_services(["payloads"])
