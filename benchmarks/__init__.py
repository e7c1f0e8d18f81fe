"""Latency benchmarks of AMCP: ``python -m benchmarks --config configs/bench/<machine>.yaml``."""
