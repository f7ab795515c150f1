"""Benchmarks: each module in this package has ``run() -> dict``; ``make bench``
runs them all (or the names given) and writes ``bench/results/<name>.json``."""
