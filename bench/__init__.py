"""Benchmarks: each `bench/bench_*.py` measures one figure against a baseline run beside it."""

# First, as in every Aorta process: importing aorta switches grpcio's fork handlers off before
# any benchmark loads grpc (see aorta/__init__.py), since the benchmarks fork operators while
# gRPC runs, some of them (bench_observability's exporter) from other threads.
import aorta  # noqa: F401
