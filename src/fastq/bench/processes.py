"""Across processes (the "process" family): ProcessQueue, C and pure, against multiprocessing.Queue
and faster-fifo, workers started once and driven through pipes, with a two-copy memcpy floor for
arrays (bench/test_bench_process.py times the same workloads with pytest-benchmark).
"""
import importlib
import multiprocessing as mp
from dataclasses import dataclass
from typing import Callable, List

from .report import Results, best_per_item


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

    def applies(self, case):
        """The view row (get(copy=False)) differs from the C row only for arrays."""
        return self.kind != "fastq-view" or (case.spec != "int" and case.spec[0] == "array")

    def make_ops(self):
        """A factory new(nbytes) -> queue; raises ImportError/AttributeError when unavailable."""
        cls = self.load()
        if self.kind in ("fastq", "fastq-view"):  # the default ring: big items take the spill pool
            return lambda nbytes=0: cls(ctx=mp.get_context(PROC_METHOD))
        if self.kind == "faster-fifo":
            return lambda nbytes=0: cls(max_size_bytes=ring_capacity(nbytes) or 1_000_000)
        return lambda nbytes=0: cls()


PROC_ROWS: List[ProcRow] = [
    ProcRow("fastq.ProcessQueue (C)", "fastq.ProcessQueue", _load_process_c,
            "C ProcessQueue not built here (Linux only; pip install -e . builds it)", "fastq"),
    ProcRow("fastq.ProcessQueue (C), get(copy=False)", "fastq.ProcessQueue-view", _load_process_c,
            "C ProcessQueue not built here (Linux only; pip install -e . builds it)", "fastq-view"),
    ProcRow("fastq.pure.ProcessQueue", "fastq.pure.ProcessQueue", _load_process_pure, "fastq.pure missing", "fastq"),
    ProcRow("multiprocessing.Queue", "multiprocessing.Queue", _load_multiprocessing, "stdlib", "mp"),
    ProcRow("faster-fifo", "faster-fifo", _load_faster_fifo,
            "not installed (pip install faster-fifo, or 'fastq-queue[bench]'; Linux only)", "faster-fifo"),
]
FLOOR_ID = "memcpy-x2"
FLOOR_NAME = "memcpy x2 (floor)"
MEMCPY_ID = "memcpy-x1"
MEMCPY_NAME = "memcpy x1"
MEMCPY_SHM_ID = "memcpy-x1-shm"
MEMCPY_SHM_NAME = "memcpy x1 into shared memory"


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
        elif kind in ("fastq", "fastq-view"):
            copy = kind == "fastq"  # fastq-view: large arrays as views of the shared memory (one copy in all)
            self.put, self.get = q.put, lambda: q.get(timeout=PROC_WAIT, copy=copy)
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
    many: bool = False  # the consumer drains with get_many(8) (rows without it: get())
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
    ProcCase("1 -> 1, 1 MiB numpy arrays, get_many(8)", "proc_array_1MiB_many", ("array", 1 * MiB), 0, 0, many=True),
    ProcCase("1 -> 1, 16 MiB numpy arrays", "proc_array_16MiB", ("array", 16 * MiB), 0, 0),
    ProcCase("1 -> 1, 16 MiB numpy arrays, get_many(8)", "proc_array_16MiB_many", ("array", 16 * MiB), 0, 0,
             many=True),
    ProcCase("1 -> 1, 64 MiB numpy arrays", "proc_array_64MiB", ("array", 64 * MiB), 0, 0, full_only=True),
    ProcCase("1 -> 1, 64 MiB numpy arrays, get_many(8)", "proc_array_64MiB_many", ("array", 64 * MiB), 0, 0,
             many=True, full_only=True),
    ProcCase("1 -> 1, 256 MiB numpy arrays", "proc_array_256MiB", ("array", 256 * MiB), 0, 0, full_only=True),
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
        if case.batched or case.many:  # put_many/get_many(100), or plain puts drained by get_many(8)
            get_batch, size = ops.get_batch, PROC_BATCH if case.batched else 8

            def one_round():
                producer.send((n, case.batched))
                got = 0
                while got < n:
                    got += len(get_batch(min(size, n - got)))
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


def _warm_buffers(src):
    """Three buffers of src's shape, their pages touched once (as a warm ring's would be): two
    private, and between them one shared mapping (MAP_SHARED: shmem pages, as a producer's copy
    into shared memory gets). Returns (private, shared, private)."""
    import mmap

    import numpy as np

    bufs = (np.empty_like(src), np.frombuffer(mmap.mmap(-1, src.nbytes), dtype=src.dtype), np.empty_like(src))
    for buf in bufs:
        buf.fill(0)
    return bufs


def memcpy_floor_round(case, n, copies=2):
    """`copies` in-process copies of the array per item (2: into a buffer and out, the physical
    limit of a queue that copies once in and once out; 1: the ceiling of a zero-copy receive, which
    costs the producer's copy only; "shm": that one copy into a shared mapping, as a producer's
    must go, which gets no transparent huge pages where /dev/shm has them off). Returns one_round()."""
    import numpy as np

    src = make_item(case.spec)
    private, shared, dst = _warm_buffers(src)
    buf = shared if copies == "shm" else private

    def one_round():
        for _ in range(n):
            np.copyto(buf, src)
            if copies == 2:
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
            if not row.applies(case):
                continue
            if progress:
                progress(f"{case.name}: {row.name}")
            results.per_item.setdefault(row.name, {})[case.name] = time_process_case(row, case, n, repeat)
        if case.spec != "int" and case.spec[0] == "array":
            if FLOOR_NAME not in results.rows:
                results.rows.append(FLOOR_NAME)
            floor = best_per_item(memcpy_floor_round(case, n), n, repeat)
            results.per_item.setdefault(FLOOR_NAME, {})[case.name] = floor
    return results


def _interleaved_producer(q, nbytes, count, conn):
    import statistics
    import time

    import numpy as np

    src = make_item(("array", nbytes))
    private, shared, _ = _warm_buffers(src)
    clock = time.perf_counter
    times = ([], [], [])
    for _ in range(count):
        t0 = clock()
        q.put(src)
        t1 = clock()
        np.copyto(private, src)
        t2 = clock()
        np.copyto(shared, src)
        t3 = clock()
        for ts, t in zip(times, (t1 - t0, t2 - t1, t3 - t2)):
            ts.append(t)
    conn.send(tuple(statistics.median(ts) for ts in times))
    conn.recv()


def zero_copy_interleaved(nbytes, count=40):
    """The producer's side of a zero-copy stream (a consumer process takes each array with
    get(copy=False) and drops it): median seconds of each put, and of a memcpy of the same array
    into a private and into a shared buffer, timed in turns in that same producer process, so the
    three see the same machine (a copy beside a busy consumer runs slower than one alone).
    Returns (put, memcpy private, memcpy shared)."""
    from fastq import ProcessQueue

    ctx = mp.get_context(PROC_METHOD)
    q = ProcessQueue(ctx=ctx)
    parent, child = ctx.Pipe()
    p = ctx.Process(target=_interleaved_producer, args=(q, nbytes, count, child), daemon=True)
    p.start()
    try:
        for _ in range(count):
            view = q.get(timeout=PROC_WAIT, copy=False)
            del view
        result = parent.recv()
        parent.send(None)
        return result
    finally:
        p.join(PROC_WAIT)
        if p.is_alive():
            p.kill()
        q.close()
