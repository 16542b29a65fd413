"""Aorta: GPU inference pipelines, wire-compatible with the Clara Deploy Platform API."""

import os
from importlib.metadata import PackageNotFoundError, version

# grpcio's fork handlers, run in the child of every fork while gRPC is loaded, sometimes abort
# a host-process operator before it execs (`epoll_wait error: Bad file descriptor`, SIGABRT),
# and the platform forks operators while its gRPC server and clients run. Aorta never forks
# to go on using gRPC in a child, so the handlers are switched off; grpcio reads the setting
# when it loads, which is after this package in every Aorta process.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

try:
    __version__ = version("aorta")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

# The Clara Platform API version this server speaks (what nvidia-clara-client 0.8.1.7 sends).
CLARA_API_VERSION = (0, 8, 1)
