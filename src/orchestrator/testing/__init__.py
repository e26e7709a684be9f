"""Fakes that are real implementations, shipped for users' tests."""
