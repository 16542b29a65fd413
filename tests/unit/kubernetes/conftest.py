"""The Kubernetes unit tests' helpers live beside this file (importlib mode does not put it on
the path)."""

from __future__ import annotations
