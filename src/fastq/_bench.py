"""The benchmark matrix shared by `python -m fastq` and the pytest-benchmark suite in bench/.

Rows are the queues that compete, cases are what they are asked to do; every case runs against every
row of its family and is timed per item (one put and one get). Two families live here:

- "thread": the in-process Queue family (ROWS x CASES) against queue.Queue, queue.SimpleQueue and deque;
- "process": ProcessQueue across processes (PROC_ROWS x PROC_CASES) against multiprocessing.Queue and
  faster-fifo, workers started once and driven through pipes (bench/test_bench_process.py times the
  same workloads with pytest-benchmark).

The ordered parallel map (ParallelQueue against Pool.imap, ProcessPoolExecutor, mpire) has its rows in
fastq._bench_parallel. The sweeps at the end (throughput against message size, against worker count)
feed `python -m fastq --plot`.

A row whose queue cannot be loaded (the C core not built, a rival not installed) is skipped and named,
never silently dropped.
"""
import collections
import contextlib
import importlib
import json
import multiprocessing as mp
import os
import platform
import sys
import threading
from dataclasses import dataclass, field
from time import perf_counter
from typing import Callable, Dict, List, Optional

BASELINE = "queue.Queue"  # ratios are speedups over this row


# --- rows ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One competitor. `load()` returns a zero-argument factory for a fresh, empty, unbounded queue
    and raises ImportError (or AttributeError) when the queue is not available here; `missing` says
    what to do about that."""

    name: str  # as printed in tables: "fastq.Queue (C)"
    id: str  # as used in pytest ids: "fastq.Queue"
    load: Callable[[], Callable[[], object]]
    missing: str
    family: str = "thread"  # "thread": in-process queues
    ops: Callable[[object], "Ops"] = field(default=None)  # adapter; None: the queue module's methods

    def make_ops(self):
        """A fresh queue wrapped in Ops; raises ImportError/AttributeError when unavailable."""
        q = self.load()()
        return (self.ops or queue_ops)(q)


@dataclass(frozen=True)
class Ops:
    """What the workloads call: bound methods, looked up once so that the loop measures the queue."""

    put: Callable
    get: Callable
    put_many: Callable  # put_many(items); a loop of put() for queues without the batch method
    get_many: Callable  # get_many(n) -> list of n items (n are known to be there)
    drain: Callable  # drain(n): take n items, waiting for each (the consumer of the handoff case)
    native_batch: bool


def queue_ops(q):
    put, get = q.put, q.get
    put_many = getattr(q, "put_many", None)
    get_many = getattr(q, "get_many", None)
    native = put_many is not None and get_many is not None
    if not native:

        def put_many(items, put=put):
            for item in items:
                put(item)

        def get_many(n, get=get):
            return [get() for _ in range(n)]

    def drain(n, get=get):
        for _ in range(n):
            get()

    return Ops(put, get, put_many, get_many, drain, native)


def deque_ops(q):
    """collections.deque is the floor: no locking, no waiting. Its handoff consumer busy-polls
    (holding the GIL until the interpreter switches threads), so that row is a reference, not a rival."""
    popleft = q.popleft

    def get_many(n, popleft=popleft):
        return [popleft() for _ in range(n)]

    def drain(n, popleft=popleft):
        got = 0
        while got < n:
            try:
                popleft()
            except IndexError:
                continue
            got += 1

    return Ops(q.append, popleft, q.extend, get_many, drain, True)


def _from_fastq_c(name):
    def load():
        # the C core, whatever FASTQ_PURE_PYTHON says (import_module: fastq._core is None when unused)
        return getattr(importlib.import_module("fastq._core"), name)

    return load


def _from_fastq_pure(name):
    def load():
        from fastq import pure

        return getattr(pure, name)

    return load


def _from_queue(name):
    def load():
        import queue

        return getattr(queue, name)

    return load


_NOT_BUILT = "C core not built (pip install -e . builds it; FASTQ_NO_EXTENSIONS=1 skips it)"

ROWS: List[Row] = [
    Row("fastq.Queue (C)", "fastq.Queue", _from_fastq_c("Queue"), _NOT_BUILT),
    Row("fastq.SimpleQueue (C)", "fastq.SimpleQueue", _from_fastq_c("SimpleQueue"), _NOT_BUILT),
    Row("fastq.pure.Queue", "fastq.pure.Queue", _from_fastq_pure("Queue"), "fastq.pure missing"),
    Row("fastq.pure.SimpleQueue", "fastq.pure.SimpleQueue", _from_fastq_pure("SimpleQueue"), "fastq.pure missing"),
    Row("queue.Queue", "queue.Queue", _from_queue("Queue"), "stdlib"),
    Row("queue.SimpleQueue", "queue.SimpleQueue", _from_queue("SimpleQueue"), "stdlib"),
    Row("collections.deque (floor)", "collections.deque", lambda: collections.deque, "stdlib", ops=deque_ops),
]

# Rows still to come (printed by `--full`); empty now that every core has its rows.
PLANNED: List[str] = []


# --- cases --------------------------------------------------------------------------------------


def _put_get(ops, n):
    put, get = ops.put, ops.get

    def work():
        for i in range(n):
            put(i)
            get()

    return work


BURST = 1000


def _burst(ops, n):
    put, get = ops.put, ops.get
    rounds, burst = range(max(1, n // BURST)), range(BURST)

    def work():
        for _ in rounds:
            for i in burst:
                put(i)
            for _ in burst:
                get()

    return work


def _handoff(ops, n):
    put, drain = ops.put, ops.drain

    def produce():
        for i in range(n):
            put(i)

    def work():
        producer = threading.Thread(target=produce)
        producer.start()
        drain(n)
        producer.join()

    return work


BATCH = 100


def _batches(ops, n):
    put_many, get_many = ops.put_many, ops.get_many
    batch, rounds = list(range(BATCH)), range(max(1, n // BATCH))

    def work():
        for _ in rounds:
            put_many(batch)
            get_many(BATCH)

    return work


@dataclass(frozen=True)
class Case:
    """A workload. `prepare(ops, n)` returns a zero-argument callable that moves n items through the
    queue (n puts and n gets) and leaves it empty, so the same queue serves every repeat."""

    name: str  # column title
    group: str  # pytest-benchmark group
    prepare: Callable
    quick_items: int  # items per timed run in `python -m fastq`
    bench_items: int  # items per round in bench/ by default
    full_items: int  # items per round with FASTQ_BENCH_FULL=1 / --bench-full
    threads: int = 1
    family: str = "thread"
    doc: str = ""


CASES: List[Case] = [
    Case("put+get, one thread", "put_get", _put_get, 20_000, 1000, 1000,
         doc="put(i); get() in a loop, one thread"),
    Case(f"burst of {BURST}", "burst", _burst, 20_000, BURST, BURST,
         doc=f"{BURST} puts, then {BURST} gets, one thread"),
    Case("two-thread handoff", "handoff", _handoff, 100_000, 100_000, 1_000_000, threads=2,
         doc="a producer thread puts ints, the main thread gets them (unbounded queue)"),
    Case(f"batches of {BATCH}", "batch", _batches, 20_000, 1000, 1000,
         doc=f"put_many({BATCH} items); get_many({BATCH}); rivals without them loop put()/get()"),
]


# --- across processes: ProcessQueue and its rivals (family "process") ------------------------------

PROC_METHOD = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
MiB = 1 << 20
PROC_BATCH = 100
PROC_WAIT = 120.0  # bound on every blocking call, so a broken row fails instead of hanging the run
PROC_BASELINE = "multiprocessing.Queue"


def _load_process_c():
    return importlib.import_module("fastq._core").ProcessQueue  # AttributeError where it is not built


def _load_process_pure():
    from fastq.pure import ProcessQueue

    return ProcessQueue


def _load_multiprocessing():
    return mp.get_context(PROC_METHOD).Queue


def _load_faster_fifo():
    import faster_fifo
    import faster_fifo_reduction  # noqa: F401  (lets its queues pass to spawned processes)

    return faster_fifo.Queue


def ring_capacity(nbytes):
    """None (the queue's default) for small messages; 4x the item, as a power of two, for big ones."""
    if not nbytes or nbytes < 64 * 1024:
        return None
    cap = 1 * MiB
    while cap < 4 * nbytes:
        cap *= 2
    return cap


@dataclass(frozen=True)
class ProcRow:
    name: str  # as printed in tables
    id: str  # pytest id, and the id in the benchmark JSON
    load: Callable[[], Callable[..., object]]
    missing: str
    kind: str  # "fastq", "mp", "faster-fifo": which adapter the workers use
    family: str = "process"

    def make_ops(self):
        """A factory new(nbytes) -> queue; raises ImportError/AttributeError when unavailable."""
        cls = self.load()
        if self.kind == "fastq":
            return lambda nbytes=0: cls(capacity=ring_capacity(nbytes), ctx=mp.get_context(PROC_METHOD))
        if self.kind == "faster-fifo":
            return lambda nbytes=0: cls(max_size_bytes=ring_capacity(nbytes) or 1_000_000)
        return lambda nbytes=0: cls()


PROC_ROWS: List[ProcRow] = [
    ProcRow("fastq.ProcessQueue (C)", "fastq.ProcessQueue", _load_process_c,
            "C ProcessQueue not built here (Linux only; pip install -e . builds it)", "fastq"),
    ProcRow("fastq.pure.ProcessQueue", "fastq.pure.ProcessQueue", _load_process_pure, "fastq.pure missing", "fastq"),
    ProcRow("multiprocessing.Queue", "multiprocessing.Queue", _load_multiprocessing, "stdlib", "mp"),
    ProcRow("faster-fifo", "faster-fifo", _load_faster_fifo,
            "not installed (pip install faster-fifo, or 'fastq-queue[bench]'; Linux only)", "faster-fifo"),
]
FLOOR_ID = "memcpy-x2"
FLOOR_NAME = "memcpy x2 (floor)"


class ProcOps:
    """put/get/put_batch/get_batch over one queue, whatever its API. get_batch(n) returns at least one
    item and at most n; without a native batch call it returns one."""

    def __init__(self, kind, q):
        self.native_batch = kind != "mp"
        if kind == "faster-fifo":  # its blocking calls default to a 10 s timeout
            self.put = lambda item: q.put(item, timeout=PROC_WAIT)
            self.get = lambda: q.get(timeout=PROC_WAIT)
            self.put_batch = lambda items: q.put_many(items, timeout=PROC_WAIT)
            self.get_batch = lambda n: q.get_many(timeout=PROC_WAIT, max_messages_to_get=n)
        elif kind == "fastq":
            self.put, self.get = q.put, lambda: q.get(timeout=PROC_WAIT)
            self.put_batch = q.put_many
            self.get_batch = lambda n: q.get_many(n, timeout=PROC_WAIT)
        else:
            self.put, self.get = q.put, lambda: q.get(timeout=PROC_WAIT)

            def put_batch(items, put=q.put):
                for item in items:
                    put(item)

            self.put_batch = put_batch
            self.get_batch = lambda n: [q.get(timeout=PROC_WAIT)]


def make_item(spec):
    """spec: "int" (the item is the counter), ("bytes", n), ("array", nbytes) (numpy float64)."""
    if spec == "int":
        return None
    if spec[0] == "bytes":
        return b"x" * spec[1]
    import numpy as np

    return np.random.default_rng(0).random(spec[1] // 8)


def _proc_producer(q, kind, spec, sentinel, conn):
    """Per command (n, batched): put n items (ints count up), then the sentinel if there is one."""
    ops = ProcOps(kind, q)
    item = make_item(spec)
    while True:
        cmd = conn.recv()
        if cmd is None:
            return
        n, batched = cmd
        if batched:
            for start in range(0, n, PROC_BATCH):
                stop = min(start + PROC_BATCH, n)
                ops.put_batch(list(range(start, stop)) if item is None else [item] * (stop - start))
        elif item is None:
            for i in range(n):
                ops.put(i)
        else:
            for _ in range(n):
                ops.put(item)
        if sentinel:
            ops.put(None)


def _proc_consumer(q, kind, conn):
    """Per command: get until a None, then report the count. One None per consumer ends a round: a
    consumer that has its None waits for the next command, so the other one gets the other None."""
    get = ProcOps(kind, q).get
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
        self.ctx = mp.get_context(PROC_METHOD)
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
                p.join(PROC_WAIT)
            conn.close()
        self.started.clear()


@dataclass(frozen=True)
class ProcCase:
    name: str
    group: str
    spec: object  # what one item is (see make_item)
    bench_items: int  # items per round in bench/ by default (arrays: see proc_items)
    full_items: int  # with FASTQ_BENCH_FULL=1 / --bench-full
    quick_items: int = 0  # in `python -m fastq`; 0: not in the quick table
    batched: bool = False
    pairs: int = 1  # producers (and consumers, when more than 1: then they are child processes)
    full_only: bool = False
    family: str = "process"

    @property
    def nbytes(self):
        return self.spec[1] if self.spec != "int" else 0


PROC_CASES: List[ProcCase] = [
    ProcCase("1 -> 1, ints", "proc_int", "int", 10_000, 200_000, quick_items=10_000),
    ProcCase("1 -> 1, 100-byte bytes", "proc_bytes", ("bytes", 100), 10_000, 200_000, quick_items=10_000),
    ProcCase(f"1 -> 1, put_many/get_many({PROC_BATCH})", "proc_batch", "int", 20_000, 500_000, quick_items=20_000,
             batched=True),
    ProcCase("2 -> 2 processes, ints", "proc_2x2", "int", 10_000, 200_000, pairs=2),
    ProcCase("1 -> 1, 1 MiB numpy arrays", "proc_array_1MiB", ("array", 1 * MiB), 0, 0, quick_items=16),
    ProcCase("1 -> 1, 8 MiB numpy arrays", "proc_array_8MiB", ("array", 8 * MiB), 0, 0),
    ProcCase("1 -> 1, 64 MiB numpy arrays", "proc_array_64MiB", ("array", 64 * MiB), 0, 0, full_only=True),
]


def proc_items(case, full, quick=False):
    """Items per round: the case's count; arrays: 64 MiB worth (256 MiB with the full sizes), 2 to 50."""
    if quick:
        return case.quick_items
    if case.spec != "int" and case.spec[0] == "array":
        return max(2, min(50, (256 if full else 64) * MiB // case.spec[1]))
    return case.full_items if full else case.bench_items


def open_process_case(row, case, n, workers, new=None):
    """Set `case` up for `row` over n items per round: a fresh queue and its worker processes (started
    through `workers`). Returns (queue, ops, one_round); one_round() moves n items between processes.
    The caller stops the workers and closes the queue. `new`: row.make_ops(), when already loaded."""
    q = (new or row.make_ops())(case.nbytes)
    ops = ProcOps(row.kind, q)
    if case.pairs == 1:
        producer = workers.start(_proc_producer, q, row.kind, case.spec, False)
        if case.batched:
            get_batch = ops.get_batch

            def one_round():
                producer.send((n, True))
                got = 0
                while got < n:
                    got += len(get_batch(min(PROC_BATCH, n - got)))
        else:
            get = ops.get

            def one_round():
                producer.send((n, False))
                for _ in range(n):
                    get()
    else:
        producers = [workers.start(_proc_producer, q, row.kind, case.spec, True) for _ in range(case.pairs)]
        consumers = [workers.start(_proc_consumer, q, row.kind) for _ in range(case.pairs)]
        share = n // case.pairs

        def one_round():
            for conn in consumers + producers:
                conn.send((share, False))
            got = sum(conn.recv() for conn in consumers)
            assert got == share * case.pairs

    return q, ops, one_round


def memcpy_floor_round(case, n):
    """Two in-process copies of the array per item (into a buffer and out): the physical limit of a
    queue that copies once in and once out. Returns one_round()."""
    import numpy as np

    src = make_item(case.spec)
    buf, dst = np.empty_like(src), np.empty_like(src)
    buf.fill(0)  # touch the pages once, as a warm ring would be
    dst.fill(0)

    def one_round():
        for _ in range(n):
            np.copyto(buf, src)
            np.copyto(dst, buf)

    return one_round


def time_process_case(row, case, n, repeat=3, new=None):
    """Best of `repeat` rounds after one warm-up, in seconds per item."""
    workers = Workers()
    q = None
    try:
        q, _, one_round = open_process_case(row, case, n, workers, new)
        return best_per_item(one_round, n, repeat)
    finally:
        workers.stop()
        if q is not None and hasattr(q, "close"):
            q.close()


def available_process_rows():
    ok, skipped = [], {}
    for row in PROC_ROWS:
        try:
            row.load()
        except (ImportError, AttributeError) as exc:
            skipped[row.name] = f"{row.missing}: {exc}"
        else:
            ok.append(row)
    return ok, skipped


def _has_numpy():
    try:
        import numpy  # noqa: F401
    except ImportError:
        return False
    return True


def run_quick_process(repeat=3, progress=None):
    """The quick process table: the cases with quick_items, every row that loads; seconds per item."""
    rows, skipped = available_process_rows()
    cases = [c for c in PROC_CASES if c.quick_items]
    if not _has_numpy():
        dropped = [c for c in cases if c.spec != "int" and c.spec[0] == "array"]
        cases = [c for c in cases if c not in dropped]
        for c in dropped:
            skipped[c.name] = "needs numpy"
    results = Results([r.name for r in rows], [c.name for c in cases], {}, skipped)
    for case in cases:
        n = proc_items(case, False, quick=True)
        for row in rows:
            if progress:
                progress(f"{case.name}: {row.name}")
            results.per_item.setdefault(row.name, {})[case.name] = time_process_case(row, case, n, repeat)
        if case.spec != "int" and case.spec[0] == "array":
            if FLOOR_NAME not in results.rows:
                results.rows.append(FLOOR_NAME)
            floor = best_per_item(memcpy_floor_round(case, n), n, repeat)
            results.per_item.setdefault(FLOOR_NAME, {})[case.name] = floor
    return results


# --- running and reporting ----------------------------------------------------------------------


@dataclass
class Results:
    """Seconds per item: per_item[row name][case name]; skipped rows with their reasons."""

    rows: List[str] = field(default_factory=list)
    cases: List[str] = field(default_factory=list)
    per_item: Dict[str, Dict[str, float]] = field(default_factory=dict)
    skipped: Dict[str, str] = field(default_factory=dict)


def available_rows(family="thread"):
    """(rows that load, {name: reason} for those that do not)."""
    ok, skipped = [], {}
    for row in ROWS:
        if row.family != family:
            continue
        try:
            row.load()
        except (ImportError, AttributeError) as exc:
            skipped[row.name] = f"{row.missing}: {exc}"
        else:
            ok.append(row)
    return ok, skipped


def time_case(row, case, n, repeat):
    """Best of `repeat` timed runs (after one untimed warm-up run), in seconds per item."""
    return best_per_item(case.prepare(row.make_ops(), n), n, repeat)


def best_per_item(work, n, repeat):
    """Best of `repeat` timed calls of work() (after one untimed warm-up), in seconds per item."""
    work()
    best = float("inf")
    for _ in range(repeat):
        t0 = perf_counter()
        work()
        best = min(best, perf_counter() - t0)
    return best / n


def run_quick(repeat=5, progress=None):
    rows, skipped = available_rows("thread")
    results = Results([r.name for r in rows], [c.name for c in CASES], {}, skipped)
    for case in CASES:
        for row in rows:
            if progress:
                progress(f"{case.name}: {row.name}")
            # the handoff runs 100k items per repeat: three repeats are plenty
            reps = min(repeat, 3) if case.threads > 1 else repeat
            results.per_item.setdefault(row.name, {})[case.name] = time_case(row, case, case.quick_items, reps)
    return results


def _parallel():
    from . import _bench_parallel

    return _bench_parallel


def parallel_results(times):
    """Results from fastq._bench_parallel.run_quick()'s {(row name, case group): seconds per task}."""
    bp = _parallel()
    results = Results()
    for case in bp.CASES:
        for row in bp.ROWS:
            t = times.get((row.name, case.group))
            if t is None:
                continue
            if row.name not in results.rows:
                results.rows.append(row.name)
            if case.name not in results.cases:
                results.cases.append(case.name)
            results.per_item.setdefault(row.name, {})[case.name] = t
    order = [r.name for r in bp.ROWS]
    results.rows.sort(key=order.index)
    for row in bp.ROWS:
        if row.name not in results.rows:
            results.skipped[row.name] = row.missing or "not installed"
    return results


def run_quick_parallel(repeat=5, full=False):
    """The ordered-map table (fastq._bench_parallel's rows and cases) as Results: seconds per task."""
    return parallel_results(_parallel().run_quick(repeat=repeat, full=full, out=lambda *a: None))


FAMILIES = ("thread", "process", "parallel")


def _family_maps():
    """{family: ({row id: row name}, {case group: case name}, [row names in order])}."""
    bp = _parallel()
    return {
        "thread": ({r.id: r.name for r in ROWS}, {c.group: c.name for c in CASES}, [r.name for r in ROWS]),
        "process": ({**{r.id: r.name for r in PROC_ROWS}, FLOOR_ID: FLOOR_NAME}, {c.group: c.name for c in PROC_CASES},
                    [r.name for r in PROC_ROWS] + [FLOOR_NAME]),
        "parallel": ({r.id: r.name for r in bp.ROWS}, {c.group: c.name for c in bp.CASES}, [r.name for r in bp.ROWS]),
    }


def results_from_benchmark_json(path, family=None):
    """Results from a pytest-benchmark JSON file written by bench/ (`--benchmark-json=FILE`): the median of
    each test, divided by the items per round that the test recorded in extra_info. `family` ("thread",
    "process", "parallel") keeps that family's tests only; None keeps every test."""
    with open(path) as f:
        data = json.load(f)
    maps = _family_maps()
    wanted = [family] if family else list(FAMILIES)
    by_id = {k: v for fam in wanted for k, v in maps[fam][0].items()}
    by_group = {k: v for fam in wanted for k, v in maps[fam][1].items()}
    order = [name for fam in wanted for name in maps[fam][2]]
    results = Results()
    for bench in data.get("benchmarks", []):
        info = bench.get("extra_info", {})
        if family and info.get("case") not in by_group:
            continue
        row = by_id.get(info.get("row"), info.get("row"))
        case = by_group.get(info.get("case"), info.get("case"))
        if row is None or case is None:
            continue
        if row not in results.rows:
            results.rows.append(row)
        if case not in results.cases:
            results.cases.append(case)
        results.per_item.setdefault(row, {})[case] = bench["stats"]["median"] / info.get("items_per_round", 1)
    results.rows.sort(key=lambda r: order.index(r) if r in order else len(order))
    return results


def _fmt_time(seconds):
    ns = seconds * 1e9
    if ns < 10:
        return f"{ns:.2f} ns"
    if ns < 10_000:
        return f"{ns:.0f} ns" if ns >= 100 else f"{ns:.1f} ns"
    if ns < 1_000_000:
        return f"{ns / 1000:.1f} µs"
    return f"{ns / 1e6:.2f} ms"


def markdown_table(results, baseline=BASELINE, also=None, first="queue", also_cases=None):
    """One row per queue, one column per case; each cell is the time per item (one put + one get) and
    the speedup over `baseline` (higher is faster); `also`: a second row to compare with (its name), in
    the columns `also_cases` (default: all)."""
    lines = [f"| {first} | " + " | ".join(results.cases) + " |", "|---" + "|---:" * len(results.cases) + "|"]
    base = results.per_item.get(baseline, {})
    other = results.per_item.get(also, {}) if also else {}
    for row in results.rows:
        cells = []
        for case in results.cases:
            t = results.per_item.get(row, {}).get(case)
            if t is None:
                cells.append("-")
                continue
            ratios = []
            if case in base:
                ratios.append(f"{base[case] / t:.1f}x" if base[case] / t >= 1.95 else f"{base[case] / t:.2f}x")
            if case in other and row != also and (also_cases is None or case in also_cases):
                ratios.append(f"{other[case] / t:.2f}x {also.split()[0]}")
            cells.append(f"{_fmt_time(t)} ({'; '.join(ratios)})" if ratios else _fmt_time(t))
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- sweeps: throughput against message size (ProcessQueue) and worker count (ParallelQueue) --------

SIZES_QUICK = [64, 1024, 16 * 1024, 256 * 1024, 4 * MiB]
SIZES_FULL = [8, 64, 512, 4 * 1024, 32 * 1024, 256 * 1024, 2 * MiB, 16 * MiB]
WORKER_COUNTS_QUICK = [1, 2, 4]
WORKER_COUNTS_FULL = [1, 2, 3, 4, 6]


def _fmt_size(nbytes):
    for unit, scale in (("MiB", MiB), ("KiB", 1024)):
        if nbytes >= scale:
            return f"{nbytes // scale} {unit}"
    return f"{nbytes} B"


@dataclass
class Sweep:
    """y[row name][x] = throughput; x the message size in bytes or the worker count."""

    title: str
    xlabel: str
    ylabel: str
    xs: List[int]
    y: Dict[str, Dict[int, float]] = field(default_factory=dict)
    reference: Optional[float] = None  # a horizontal line (the serial map), or None
    reference_label: str = ""
    skipped: Dict[str, str] = field(default_factory=dict)


def sweep_message_size(full=False, repeat=3, progress=None):
    """MiB/s through each ProcessQueue row, one producer process -> this process, bytes items of each size."""
    sizes = SIZES_FULL if full else SIZES_QUICK
    rows, skipped = available_process_rows()
    sweep = Sweep("ProcessQueue: one producer process -> one consumer, bytes items",
                  "message size (bytes)", "throughput (MiB/s)", sizes, skipped=skipped)
    budget = (256 if full else 32) * MiB  # bytes per round, within [16, 20k (100k full)] items
    for size in sizes:
        n = max(16, min(100_000 if full else 20_000, budget // size))
        case = ProcCase(_fmt_size(size), f"size_{size}", ("bytes", size), n, n)
        for row in rows:
            if progress:
                progress(f"{row.name}: {_fmt_size(size)} x {n}")
            per_item = time_process_case(row, case, n, repeat)
            sweep.y.setdefault(row.name, {})[size] = size / per_item / MiB
    return sweep


@contextlib.contextmanager
def _workers(count):
    bp = _parallel()
    saved = bp.WORKERS
    bp.WORKERS = count  # the rows' pools read it when they open
    try:
        yield
    finally:
        bp.WORKERS = saved


def sweep_worker_count(full=False, repeat=2, progress=None):
    """Tasks per second through each ordered-map row, a ~1 ms CPU-bound task, per worker count."""
    bp = _parallel()
    counts = WORKER_COUNTS_FULL if full else WORKER_COUNTS_QUICK
    steps = bp.calibrate()
    case = next(c for c in bp.CASES if c.func is bp.burn)
    n = 1000 if full else 200
    sweep = Sweep(f"ordered map of a ~1 ms CPU-bound task ({n} tasks per round)", "workers",
                  "throughput (tasks/s)", counts, reference_label="serial map")
    sweep.reference = 1 / bp.time_row(next(r for r in bp.ROWS if r.id == "serial"), case, n, steps, repeat)
    for row in bp.ROWS:
        if row.id == "serial":
            continue
        for count in counts:
            if progress:
                progress(f"{row.name}: {count} workers")
            try:
                with _workers(count):
                    per_task = bp.time_row(row, case, n, steps, repeat)
            except ImportError as exc:
                sweep.skipped[row.name] = f"{row.missing or 'not installed'}: {exc}"
                break
            sweep.y.setdefault(row.name, {})[count] = 1 / per_task
    return sweep


def sweep_table(sweep, fmt="{:.0f}"):
    head = [(_fmt_size(x) if "size" in sweep.xlabel else str(x)) for x in sweep.xs]
    lines = [f"| {sweep.ylabel} / {sweep.xlabel} | " + " | ".join(head) + " |", "|---" + "|---:" * len(head) + "|"]
    for row, ys in sweep.y.items():
        lines.append(f"| {row} | " + " | ".join(fmt.format(ys[x]) if x in ys else "-" for x in sweep.xs) + " |")
    if sweep.reference is not None:
        lines.append(f"| {sweep.reference_label} | " + " | ".join(fmt.format(sweep.reference) for _ in sweep.xs) + " |")
    return "\n".join(lines)


def environment_lines():
    import fastq

    impl = fastq.IMPLEMENTATION
    return [
        f"fastq {fastq.__version__}, IMPLEMENTATION = {impl!r} (fastq.Queue is {fastq.Queue.__module__}.Queue, "
        f"fastq.ProcessQueue's core: {fastq.IMPLEMENTATIONS['ProcessQueue']!r})",
        f"Python {platform.python_version()} ({platform.python_implementation()}, {sys.platform}, "
        f"{platform.machine()}), {_cpu_count()} CPUs",
    ]


def _cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def _bars(ax, results, baseline, title):
    base = results.per_item.get(baseline, {})
    cases = [c for c in results.cases if c in base]
    rows = [r for r in results.rows if any(c in results.per_item.get(r, {}) for c in cases)]
    width = 0.8 / max(1, len(rows))
    for i, row in enumerate(rows):
        ys = [base[c] / results.per_item[row][c] if c in results.per_item.get(row, {}) else 0 for c in cases]
        ax.bar([x + i * width for x in range(len(cases))], ys, width, label=row)
    ax.set_xticks([x + width * (len(rows) - 1) / 2 for x in range(len(cases))])
    ax.set_xticklabels([c.replace(", ", ",\n") for c in cases], fontsize="small")
    ax.set_yscale("log")
    ax.axhline(1.0, color="gray", linewidth=0.8)
    ax.set_ylabel(f"speedup over {baseline}\n(log scale; higher is faster)")
    ax.set_title(title)
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _lines(ax, sweep, logx):
    for row, ys in sweep.y.items():
        xs = [x for x in sweep.xs if x in ys]
        ax.plot(xs, [ys[x] for x in xs], marker="o", label=row)
    if sweep.reference is not None:
        ax.axhline(sweep.reference, color="gray", linestyle="--", linewidth=1, label=sweep.reference_label)
    if logx:
        ax.set_xscale("log", base=2)
        ax.set_xticks(sweep.xs)
        ax.set_xticklabels([_fmt_size(x) for x in sweep.xs], fontsize="small")
        ax.set_yscale("log")
    else:
        ax.set_xticks(sweep.xs)
        ax.set_ylim(bottom=0)
    ax.set_xlabel(sweep.xlabel)
    ax.set_ylabel(sweep.ylabel)
    ax.set_title(sweep.title, fontsize="medium")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))


def plot(results, path, baseline=BASELINE, size_sweep=None, worker_sweep=None, machine=None):
    """Draw to `path`: the in-process speedups over `baseline` (bars), and when given, throughput
    against message size (ProcessQueue and rivals) and against worker count (ParallelQueue and rivals).
    Raises ImportError without matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 1 + (size_sweep is not None) + (worker_sweep is not None)
    fig, axes = plt.subplots(panels, 1, figsize=(11, 4.2 * panels), squeeze=False)
    axes = [a[0] for a in axes]
    _bars(axes[0], results, baseline, "in-process queues")
    i = 1
    if size_sweep is not None:
        _lines(axes[i], size_sweep, logx=True)
        i += 1
    if worker_sweep is not None:
        _lines(axes[i], worker_sweep, logx=False)
    fig.suptitle(machine or f"fastq {_fastq_version()}, Python {platform.python_version()}, "
                 f"{platform.system()} {platform.machine()}, {_cpu_count()} CPUs")
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fastq_version():
    import fastq

    return fastq.__version__


__all__ = ["ROWS", "CASES", "PLANNED", "BASELINE", "Row", "Case", "Ops", "Results", "available_rows",
           "time_case", "run_quick", "results_from_benchmark_json", "markdown_table", "environment_lines", "plot",
           "PROC_ROWS", "PROC_CASES", "PROC_BASELINE", "ProcRow", "ProcCase", "ProcOps", "Workers",
           "open_process_case", "memcpy_floor_round", "time_process_case", "run_quick_process", "proc_items",
           "run_quick_parallel", "parallel_results", "Sweep", "sweep_message_size", "sweep_worker_count",
           "sweep_table"]
