"""In-process queues (the "thread" family): fastq's Queue family, C and pure, against queue.Queue,
queue.SimpleQueue and collections.deque (the floor). Rows are the queues that compete, cases what
they are asked to do; every case runs against every row and is timed per item (one put and one get).
bench/test_bench_queue.py times the same matrix with pytest-benchmark; run_quick() for `python -m fastq`.

A row whose queue cannot be loaded (the C core not built, a rival not installed) is skipped and named,
never silently dropped.
"""
import collections
import importlib
import threading
from dataclasses import dataclass, field
from typing import Callable, List

from .report import Results, best_per_item


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
    ops: Callable[[object], "Ops"] | None = field(default=None)  # adapter; None: the queue module's methods

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
        # the C core, whatever FASTQ_NO_EXTENSIONS says at run time (import_module: fastq._core is None when unused)
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
