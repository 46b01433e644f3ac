"""ProcessQueue against its rivals across processes: one benchmark group per case, one row per queue.

Rows: fastq.ProcessQueue (the C core, skipped until it is built), fastq.pure.ProcessQueue,
multiprocessing.Queue and faster-fifo (skipped when not installed: pip install 'fastq-queue[bench]').
Each round moves a known number of items between processes (extra_info: items_per_round), so a time
per round divides into a time per item; bench/report.py does that:

    python -m pytest bench/test_bench_process.py -p no:cacheprovider --benchmark-json=proc.json
    python bench/report.py proc.json --baseline multiprocessing.Queue

Cases (groups):
  proc_int, proc_bytes   1 producer process -> 1 consumer (this process): ints, 100-byte bytes
  proc_batch             the same with put_many(100)/get_many(100); rows without them loop put()/get()
  proc_2x2               2 producer processes -> 2 consumer processes, ints
  proc_array_1MiB/8MiB   numpy arrays from a producer process to this one; 64 MiB with the full sizes
                         (FASTQ_BENCH_FULL=1 or --bench-full). The row "memcpy x2 (floor)" copies
                         each array twice in this process (into a buffer and out of it): the physical
                         limit for a queue that copies once in and once out.

Workers are started once per test (fork where available) and driven through pipes, so process start-up
is not timed. For the array cases the shared-memory rings (fastq's C core, faster-fifo) get a capacity
of four times the array (so it travels through the ring), rounded up to a power of two.
The rows and cases live here until they join fastq._bench's matrix (a "process" family).
"""
import multiprocessing as mp
from dataclasses import dataclass
from typing import Callable

import pytest

METHOD = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
MiB = 1 << 20
BATCH = 100
ROUNDS = 5
WAIT = 120.0  # bound on every blocking call, so a broken row fails instead of hanging the run

pytestmark = pytest.mark.timeout(900)


# --- rows -----------------------------------------------------------------------------------------


def _load_fastq_c():
    import importlib

    return importlib.import_module("fastq._core").ProcessQueue  # AttributeError until it is built


def _load_fastq_pure():
    from fastq.pure import ProcessQueue

    return ProcessQueue


def _load_multiprocessing():
    return mp.get_context(METHOD).Queue


def _load_faster_fifo():
    import faster_fifo
    import faster_fifo_reduction  # noqa: F401  (lets its queues pass to spawned processes)

    return faster_fifo.Queue


def _capacity(nbytes):
    """None (the queue's default) for small messages; 4x the item, as a power of two, for arrays."""
    if not nbytes:
        return None
    cap = 1 * MiB
    while cap < 4 * nbytes:
        cap *= 2
    return cap


@dataclass(frozen=True)
class ProcRow:
    name: str  # as printed in tables
    id: str  # pytest id, and the name report.py prints
    load: Callable[[], Callable[..., object]]
    missing: str
    kind: str  # "fastq", "mp", "faster-fifo": which adapter the workers use

    def make_ops(self):
        """A factory new(nbytes) -> queue; raises ImportError/AttributeError when unavailable
        (conftest's make_ops fixture turns that into a skip naming what is missing)."""
        cls = self.load()
        if self.kind == "fastq":
            return lambda nbytes=0: cls(capacity=_capacity(nbytes), ctx=mp.get_context(METHOD))
        if self.kind == "faster-fifo":
            return lambda nbytes=0: cls(max_size_bytes=_capacity(nbytes) or 1_000_000)
        return lambda nbytes=0: cls()


ROWS = [
    ProcRow("fastq.ProcessQueue (C)", "fastq.ProcessQueue", _load_fastq_c,
            "C ProcessQueue not built (pip install -e . builds it)", "fastq"),
    ProcRow("fastq.pure.ProcessQueue", "fastq.pure.ProcessQueue", _load_fastq_pure, "fastq.pure missing", "fastq"),
    ProcRow("multiprocessing.Queue", "multiprocessing.Queue", _load_multiprocessing, "stdlib", "mp"),
    ProcRow("faster-fifo", "faster-fifo", _load_faster_fifo, "not installed (pip install 'fastq-queue[bench]')",
            "faster-fifo"),
]
FLOOR_ID = "memcpy-x2"


# --- what the workers call ---------------------------------------------------------------------------


class _Ops:
    """put/get/put_batch/get_batch over one queue, whatever its API. get_batch(n) returns at least one
    item and at most n; without a native batch call it returns one."""

    def __init__(self, kind, q):
        self.native_batch = kind != "mp"
        if kind == "faster-fifo":  # its blocking calls default to a 10 s timeout
            self.put = lambda item: q.put(item, timeout=WAIT)
            self.get = lambda: q.get(timeout=WAIT)
            self.put_batch = lambda items: q.put_many(items, timeout=WAIT)
            self.get_batch = lambda n: q.get_many(timeout=WAIT, max_messages_to_get=n)
        elif kind == "fastq":
            self.put, self.get = q.put, lambda: q.get(timeout=WAIT)
            self.put_batch = q.put_many
            self.get_batch = lambda n: q.get_many(n, timeout=WAIT)
        else:
            self.put, self.get = q.put, lambda: q.get(timeout=WAIT)

            def put_batch(items, put=q.put):
                for item in items:
                    put(item)

            self.put_batch = put_batch
            self.get_batch = lambda n: [q.get(timeout=WAIT)]


def _make_item(spec):
    """spec: "int" (the item is the counter), ("bytes", n), ("array", nbytes)."""
    if spec == "int":
        return None
    if spec[0] == "bytes":
        return b"x" * spec[1]
    import numpy as np

    return np.random.default_rng(0).random(spec[1] // 8)


def _producer(q, kind, spec, sentinel, conn):
    """Per command (n, batched): put n items (ints count up), then the sentinel if there is one."""
    ops = _Ops(kind, q)
    item = _make_item(spec)
    while True:
        cmd = conn.recv()
        if cmd is None:
            return
        n, batched = cmd
        if batched:
            for start in range(0, n, BATCH):
                stop = min(start + BATCH, n)
                ops.put_batch(list(range(start, stop)) if item is None else [item] * (stop - start))
        elif item is None:
            for i in range(n):
                ops.put(i)
        else:
            for _ in range(n):
                ops.put(item)
        if sentinel:
            ops.put(None)


def _consumer(q, kind, conn):
    """Per command: get until a None, then report the count. One None per consumer ends a round: a
    consumer that has its None waits for the next command, so the other one gets the other None."""
    get = _Ops(kind, q).get
    while conn.recv() is not None:
        count = 0
        while get() is not None:
            count += 1
        conn.send(count)


class Workers:
    """Child processes driven through pipes: start(target, *args) passes a pipe end as the last
    argument and returns the other. stop() ends the workers with a None command, and kills those
    that do not end (a consumer blocked in get)."""

    def __init__(self):
        self.ctx = mp.get_context(METHOD)
        self.started = []  # (process, this side's pipe end)

    def start(self, target, *args):
        parent, child = self.ctx.Pipe()
        p = self.ctx.Process(target=target, args=args + (child,), daemon=True)
        p.start()
        self.started.append((p, parent))
        return parent

    def stop(self):
        for p, conn in self.started:
            try:
                conn.send(None)
            except OSError:
                pass
        for p, conn in self.started:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(WAIT)
            conn.close()
        self.started.clear()


@pytest.fixture
def workers():
    w = Workers()
    yield w
    w.stop()


# --- cases ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcCase:
    name: str
    group: str
    spec: object  # what one item is (see _make_item)
    bench_items: int
    full_items: int
    batched: bool = False
    pairs: int = 1  # producers (and consumers, when more than 1: then they are child processes)
    full_only: bool = False


def _array_items(nbytes, full):
    """Arrays per round: 64 MiB worth (256 MiB with the full sizes), 2 to 50."""
    return max(2, min(50, (256 if full else 64) * MiB // nbytes))


CASES = [
    ProcCase("1 -> 1, ints", "proc_int", "int", 10_000, 200_000),
    ProcCase("1 -> 1, 100-byte bytes", "proc_bytes", ("bytes", 100), 10_000, 200_000),
    ProcCase(f"1 -> 1, put_many/get_many({BATCH})", "proc_batch", "int", 20_000, 500_000, batched=True),
    ProcCase("2 -> 2 processes, ints", "proc_2x2", "int", 10_000, 200_000, pairs=2),
    ProcCase("1 -> 1, 1 MiB numpy arrays", "proc_array_1MiB", ("array", 1 * MiB), 0, 0),
    ProcCase("1 -> 1, 8 MiB numpy arrays", "proc_array_8MiB", ("array", 8 * MiB), 0, 0),
    ProcCase("1 -> 1, 64 MiB numpy arrays", "proc_array_64MiB", ("array", 64 * MiB), 0, 0, full_only=True),
]
ARRAY_CASES = [c for c in CASES if c.spec[0] == "array"]


def _items(case, full):
    if case.spec[0] == "array":
        return _array_items(case.spec[1], full)
    return case.full_items if full else case.bench_items


def _record(benchmark, case, row_id, n, native_batch):
    benchmark.group = f"{case.group}: {case.name}, {n:,} items per round"
    benchmark.extra_info.update(row=row_id, case=case.group, items_per_round=n, native_batch=native_batch)


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
@pytest.mark.parametrize("case", CASES, ids=[case.group for case in CASES])
def test_process(benchmark, make_ops, bench_full, workers, case, row):
    if case.full_only and not bench_full:
        pytest.skip(f"{case.group} runs with the full sizes only (FASTQ_BENCH_FULL=1 or --bench-full)")
    if case.spec[0] == "array":
        pytest.importorskip("numpy")
    new = make_ops(row)
    n = _items(case, bench_full)
    nbytes = case.spec[1] if case.spec[0] == "array" else 0
    q = new(nbytes)
    ops = _Ops(row.kind, q)
    _record(benchmark, case, row.id, n, ops.native_batch)
    try:
        if case.pairs == 1:
            producer = workers.start(_producer, q, row.kind, case.spec, False)

            if case.batched:
                get_batch = ops.get_batch

                def one_round():
                    producer.send((n, True))
                    got = 0
                    while got < n:
                        got += len(get_batch(min(BATCH, n - got)))
            else:
                get = ops.get

                def one_round():
                    producer.send((n, False))
                    for _ in range(n):
                        get()
        else:
            producers = [workers.start(_producer, q, row.kind, case.spec, True) for _ in range(case.pairs)]
            consumers = [workers.start(_consumer, q, row.kind) for _ in range(case.pairs)]
            share = n // case.pairs

            def one_round():
                for conn in consumers + producers:
                    conn.send((share, False))
                got = sum(conn.recv() for conn in consumers)
                assert got == share * case.pairs

        benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    finally:
        workers.stop()
        if hasattr(q, "close"):
            q.close()


@pytest.mark.parametrize("case", ARRAY_CASES, ids=[case.group for case in ARRAY_CASES])
def test_memcpy_floor(benchmark, bench_full, case):
    """Two in-process copies of the array per item (in and out of a buffer): the physical limit."""
    if case.full_only and not bench_full:
        pytest.skip(f"{case.group} runs with the full sizes only (FASTQ_BENCH_FULL=1 or --bench-full)")
    np = pytest.importorskip("numpy")
    n = _items(case, bench_full)
    src = _make_item(case.spec)
    buf, dst = np.empty_like(src), np.empty_like(src)
    buf.fill(0)  # touch the pages once, as a warm ring would be
    dst.fill(0)
    _record(benchmark, case, FLOOR_ID, n, True)

    def one_round():
        for _ in range(n):
            np.copyto(buf, src)
            np.copyto(dst, buf)

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1, warmup_rounds=1)
