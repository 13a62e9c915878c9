"""secpath benchmarks: each ``bench_<area>.py`` prints a table with ratios
against a baseline measured in the same run.  ``python -m bench [AREA ...]``
runs them all (or the named ones)."""
