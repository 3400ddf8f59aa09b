"""Benchmark harness for QIP Portal (issue 10): a realistic dataset generator on its own
PostgreSQL database, in-process measurements of pages, sweeps, the SPC engine, imports
and PDF rendering, and a time-bounded load test of the full stack on loopback.

    python -m scripts.bench --scale full        # what `make bench` runs
    python -m scripts.bench --scale small       # 1/100 of the data, a few minutes

Results go to ``scripts/bench/results/<scale>.json`` and are rendered into
``BENCHMARKS.md`` at the repository root. See BENCHMARKS.md for what is measured and how.
"""
