"""Benchmarks: measure throughput of the executor and the workers."""
