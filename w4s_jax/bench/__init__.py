"""Benchmarks behind launch/bench_*.py: each measures ours against a reference in the same run."""
