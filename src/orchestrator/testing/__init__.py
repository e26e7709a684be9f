"""Fakes that are real implementations, shipped for users' tests.

Beside the planner in the layers: the commands and benchmarks use them; nothing in the runtime path does.
"""
