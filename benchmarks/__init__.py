"""The kit's benchmarks: how fast it trains on a CPU and why the runtime defaults are what they are.

Not part of the student package. One entry point, `python -m benchmarks <name> [options]`; every result is
printed and saved as JSON in benchmarks/results/. The method, the numbers and the decisions: docs/BENCHMARKS.md.
"""
