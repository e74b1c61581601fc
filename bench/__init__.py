"""tradelog's benchmarks: ``python -m bench --help`` and docs/BENCHMARKS.md."""
