"""The in-process Queue family against its rivals: one benchmark group per case, one row per queue.

Each round moves a known number of items (recorded in extra_info as items_per_round), so a time per
round divides into a time per item; bench/report.py does that and prints ratios against queue.Queue.
Rows and cases are defined once, in fastq.bench.queues, and shared with `python -m fastq`.
"""
import pytest

from fastq.bench.queues import CASES, ROWS

THREAD_ROWS = [row for row in ROWS if row.family == "thread"]
THREAD_CASES = [case for case in CASES if case.family == "thread"]

# rounds for the cases that start a thread per round; the others calibrate themselves
HANDOFF_ROUNDS = 5


@pytest.mark.parametrize("row", THREAD_ROWS, ids=[row.id for row in THREAD_ROWS])
@pytest.mark.parametrize("case", THREAD_CASES, ids=[case.group for case in THREAD_CASES])
def test_queue(benchmark, make_ops, bench_full, case, row):
    ops = make_ops(row)
    n = case.full_items if bench_full else case.bench_items
    work = case.prepare(ops, n)
    benchmark.group = f"{case.group}: {case.name}, {n:,} items per round"
    benchmark.extra_info.update(row=row.id, case=case.group, items_per_round=n, native_batch=ops.native_batch)
    if case.threads > 1:
        benchmark.pedantic(work, rounds=HANDOFF_ROUNDS, iterations=1, warmup_rounds=1)
    else:
        benchmark(work)
