"""fastq's benchmark harness, shared by `python -m fastq` (cli) and the pytest-benchmark suite in
bench/: the in-process queues (queues), ProcessQueue across processes (processes), the ordered
parallel map (parallel), the sweeps, the report (markdown tables, pytest-benchmark JSON), the plot
and the progress bar. `import fastq` never loads it.
"""
