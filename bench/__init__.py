"""Benchmarks: each `bench/bench_*.py` measures one figure against a baseline run beside it."""
