"""Benchmarks (run on demand, not tests): ``python -m memfuse_memory.bench --help``."""
