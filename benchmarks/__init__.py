"""Benchmarks against the field; see benchmarks/README.md."""
