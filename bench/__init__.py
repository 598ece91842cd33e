"""Benchmarks and reproductions, run as modules from the repo root: `python -m bench.<script> [--help]`."""
