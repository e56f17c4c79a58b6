"""Benchmarks against the targets in the issues: `python -m bench` runs them all."""
