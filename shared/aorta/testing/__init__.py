"""Test support that starts real servers and drives real clients.

Fixtures and helpers here run the genuine article (a `nats-server`, NVIDIA's Clara client in its
own virtualenv, ...) so the tests exercise the platform the way it is used, not a mock of it.
"""
