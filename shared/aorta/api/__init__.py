"""Clara Platform API stubs, generated from protos/ by `make protos`: do not edit.

The messages and services are NVIDIA's `nvidia.clara.platform` ones, field for field, so
NVIDIA's clients and ours speak the same wire format; Aorta's own extensions (the audit log)
live apart, in package `aorta.v1`.
"""
