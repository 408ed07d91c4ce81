"""Benchmarks of an experiment's programs: `segjax bench`, and the numbers of BENCHMARKS.md."""

from segjax.bench.run import WHATS, Record, benchmark, format_records

__all__ = ["WHATS", "Record", "benchmark", "format_records"]
