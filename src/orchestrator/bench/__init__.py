"""Benchmarks: measure throughput of the executor and the workers, and the CLI's start-up.

An interface layer: only the commands import it; it may use every layer below.
"""
