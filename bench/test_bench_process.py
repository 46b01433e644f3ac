"""ProcessQueue against its rivals across processes: one benchmark group per case, one row per queue.

Rows: fastq.ProcessQueue (the C core, skipped where it is not built; for arrays also with
get(copy=False), the views without the reader's copy), fastq.pure.ProcessQueue,
multiprocessing.Queue and faster-fifo (skipped when not installed: pip install 'fastq-queue[bench]').
Each round moves a known number of items between processes (extra_info: items_per_round), so a time
per round divides into a time per item; bench/report.py does that:

    python -m pytest bench/test_bench_process.py -p no:cacheprovider --benchmark-json=proc.json
    python bench/report.py proc.json --baseline multiprocessing.Queue

Cases (groups):
  proc_int, proc_bytes   1 producer process -> 1 consumer (this process): ints, 100-byte bytes
  proc_batch             the same with put_many(100)/get_many(100); rows without them loop put()/get()
  proc_2x2               2 producer processes -> 2 consumer processes, ints
  proc_array_*          numpy arrays from a producer process to this one, 1 and 16 MiB; 64 and 256 MiB
                         with the full sizes (FASTQ_BENCH_FULL=1 or --bench-full); the *_many cases
                         drain with get_many(8). The row "memcpy x2 (floor)" copies each array twice
                         in this process (into a buffer and out of it): the physical limit for a queue
                         that copies once in and once out; "memcpy x1" copies it once.

Workers are started once per test (fork where available) and driven through pipes, so process start-up
is not timed. fastq's queues keep their default ring (1 MiB), so arrays travel through its spill pool,
as a user's would; faster-fifo's ring gets four times the array, rounded up to a power of two (it has
no other way to carry one).
The rows, cases and workloads live in fastq.bench.processes, shared with `python -m fastq`.
"""
import pytest

from fastq.bench.processes import (FLOOR_ID, MEMCPY_ID, MEMCPY_SHM_ID, PROC_CASES, PROC_ROWS, Workers,
                                   memcpy_floor_round, open_process_case, proc_items, zero_copy_interleaved)

ROWS = PROC_ROWS
CASES = PROC_CASES
ARRAY_CASES = [c for c in CASES if c.spec != "int" and c.spec[0] == "array"]
ROUNDS = 5

pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def workers():
    w = Workers()
    yield w
    w.stop()


def _record(benchmark, case, row_id, n, native_batch):
    benchmark.group = f"{case.group}: {case.name}, {n:,} items per round"
    benchmark.extra_info.update(row=row_id, case=case.group, items_per_round=n, native_batch=native_batch)


def _skip_unless_sized(case, bench_full):
    if case.full_only and not bench_full:
        pytest.skip(f"{case.group} runs with the full sizes only (FASTQ_BENCH_FULL=1 or --bench-full)")
    if case in ARRAY_CASES:
        pytest.importorskip("numpy")


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
@pytest.mark.parametrize("case", CASES, ids=[case.group for case in CASES])
def test_process(benchmark, make_ops, bench_full, workers, case, row):
    _skip_unless_sized(case, bench_full)
    if not row.applies(case):
        pytest.skip(f"{row.name}: the same as the C row for {case.group}")
    new = make_ops(row)
    n = proc_items(case, bench_full)
    q = None
    try:
        q, ops, one_round = open_process_case(row, case, n, workers, new)
        _record(benchmark, case, row.id, n, ops.native_batch)
        benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    finally:
        workers.stop()
        if q is not None and hasattr(q, "close"):
            q.close()


@pytest.mark.parametrize("copies", [2, 1, "shm"], ids=["x2", "x1", "x1-shm"])
@pytest.mark.parametrize("case", ARRAY_CASES, ids=[case.group for case in ARRAY_CASES])
def test_memcpy_floor(benchmark, bench_full, case, copies):
    """Two in-process copies of the array per item (in and out of a buffer): the physical limit; one:
    a zero-copy receive's ceiling; one into a shared mapping: that ceiling for any shared-memory queue."""
    _skip_unless_sized(case, bench_full)
    n = proc_items(case, bench_full)
    _record(benchmark, case, {2: FLOOR_ID, 1: MEMCPY_ID, "shm": MEMCPY_SHM_ID}[copies], n, True)
    benchmark.pedantic(memcpy_floor_round(case, n, copies), rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("case", ARRAY_CASES, ids=[case.group for case in ARRAY_CASES])
def test_zero_copy_put_beside_memcpy(bench_full, case, capsys):
    """The zero-copy receive costs the producer's put: its median time against a memcpy of the same
    array, timed in turns in the same producer process (zero_copy_interleaved). Printed, not
    asserted (a shared machine)."""
    _skip_unless_sized(case, bench_full)
    if case.many:
        pytest.skip("get() only")
    pytest.importorskip("fastq._shm")
    put, private, shared = zero_copy_interleaved(case.spec[1])
    with capsys.disabled():
        print(f"\n  {case.name}, get(copy=False): producer's put {put * 1e3:.2f} ms; memcpy x1 / put "
              f"{private / put:.2f} (into shared memory: {shared / put:.2f})")
