"""The parts of ``benchmarks/cluster_bench.py``: the processes it starts and pins, the
load and what it measures of it, the scaling model, and the report."""
