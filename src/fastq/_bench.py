"""The benchmark matrix shared by `python -m fastq` and the pytest-benchmark suite in bench/.

Rows are the queues that compete, cases are what they are asked to do; every case runs against every
row of its family and is timed per item (one put and one get). A later core adds its rows and cases
here (ProcessQueue: a "process" family against multiprocessing.Queue and faster-fifo; ParallelQueue
against mpire and multiprocessing.Pool), and both the quick table and the full suite pick them up.

A row whose queue cannot be loaded (the C core not built, a rival not installed) is skipped and named,
never silently dropped.
"""
import collections
import importlib
import json
import platform
import sys
import threading
from dataclasses import dataclass, field
from time import perf_counter
from typing import Callable, Dict, List

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

# Shown by `--full` until the cores behind them land.
PLANNED = [
    "process family: fastq.ProcessQueue vs multiprocessing.Queue, faster-fifo (pip install 'fastq-queue[bench]')",
    "ordered parallel map: fastq.ParallelQueue vs multiprocessing.Pool.imap, mpire",
]


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
    work = case.prepare(row.make_ops(), n)
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


def results_from_benchmark_json(path):
    """Results from a pytest-benchmark JSON file written by bench/ (`--benchmark-json=FILE`): the median of
    each test, divided by the items per round that the test recorded in extra_info."""
    with open(path) as f:
        data = json.load(f)
    by_group = {c.group: c.name for c in CASES}
    by_id = {r.id: r.name for r in ROWS}
    results = Results()
    for bench in data.get("benchmarks", []):
        info = bench.get("extra_info", {})
        row = by_id.get(info.get("row"), info.get("row"))
        case = by_group.get(info.get("case"), info.get("case"))
        if row is None or case is None:
            continue
        if row not in results.rows:
            results.rows.append(row)
        if case not in results.cases:
            results.cases.append(case)
        results.per_item.setdefault(row, {})[case] = bench["stats"]["median"] / info.get("items_per_round", 1)
    order = [r.name for r in ROWS]
    results.rows.sort(key=lambda r: order.index(r) if r in order else len(order))
    return results


def _fmt_time(seconds):
    ns = seconds * 1e9
    if ns < 10:
        return f"{ns:.2f} ns"
    if ns < 10_000:
        return f"{ns:.0f} ns" if ns >= 100 else f"{ns:.1f} ns"
    return f"{ns / 1000:.1f} µs"


def markdown_table(results, baseline=BASELINE):
    """One row per queue, one column per case; each cell is the time per item (one put + one get) and
    the speedup over `baseline` (higher is faster)."""
    lines = ["| queue | " + " | ".join(results.cases) + " |", "|---" + "|---:" * len(results.cases) + "|"]
    base = results.per_item.get(baseline, {})
    for row in results.rows:
        cells = []
        for case in results.cases:
            t = results.per_item.get(row, {}).get(case)
            if t is None:
                cells.append("-")
            elif case in base:
                cells.append(f"{_fmt_time(t)} ({base[case] / t:.1f}x)")
            else:
                cells.append(_fmt_time(t))
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def environment_lines():
    import fastq

    impl = fastq.IMPLEMENTATION
    return [
        f"fastq {fastq.__version__}, IMPLEMENTATION = {impl!r} (fastq.Queue is {fastq.Queue.__module__}.Queue)",
        f"Python {platform.python_version()} ({platform.python_implementation()}, {sys.platform}, "
        f"{platform.machine()}), {_cpu_count()} CPUs",
    ]


def _cpu_count():
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def plot(results, path, baseline=BASELINE):
    """A grouped bar chart of speedups over `baseline`. Raises ImportError without matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = results.per_item.get(baseline, {})
    cases = [c for c in results.cases if c in base]
    rows = results.rows
    fig, ax = plt.subplots(figsize=(max(6, 2.2 * len(cases)) + 2.5, 4.5))
    width = 0.8 / max(1, len(rows))
    for i, row in enumerate(rows):
        ys = [base[c] / results.per_item[row][c] if c in results.per_item.get(row, {}) else 0 for c in cases]
        ax.bar([x + i * width for x in range(len(cases))], ys, width, label=row)
    ax.set_xticks([x + width * (len(rows) - 1) / 2 for x in range(len(cases))])
    ax.set_xticklabels(cases)
    ax.set_yscale("log")
    ax.axhline(1.0, color="gray", linewidth=0.8)
    ax.set_ylabel(f"speedup over {baseline} (log scale; higher is faster)")
    ax.set_title(f"fastq, Python {platform.python_version()}")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


__all__ = ["ROWS", "CASES", "PLANNED", "BASELINE", "Row", "Case", "Ops", "Results", "available_rows",
           "time_case", "run_quick", "results_from_benchmark_json", "markdown_table", "environment_lines", "plot"]

