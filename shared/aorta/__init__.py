"""Aorta: GPU inference pipelines, wire-compatible with the Clara Deploy Platform API."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("aorta")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

# The Clara Platform API version this server speaks (what nvidia-clara-client 0.8.1.7 sends).
CLARA_API_VERSION = (0, 8, 1)
