"""Ordered parallel map: fastq.ParallelQueue against its rivals (rows x cases, as in fastq._bench).

Every row is an ordered `imap(func, items)` over a pool of WORKERS workers, opened once outside the
timing. The cases: a trivial function (the per-task overhead) and a ~1 ms CPU-bound one (the
speedup over running it serially). bench/test_bench_parallel.py times these with pytest-benchmark;
run_quick() prints the same table without pytest (for `python -m fastq`).
"""
import contextlib
import multiprocessing
import os
import time
from dataclasses import dataclass
from typing import Callable, List

WORKERS = 2


# --- the tasks (module level: they pickle by reference for every process pool) -------------------

def identity(x):
    return x


def burn(n):
    """Spin the CPU for n loop steps (calibrate() finds n for a duration)."""
    x = 0
    for i in range(n):
        x += i
    return x


def calibrate(seconds=0.001):
    """Loop steps that make burn() take about `seconds` here."""
    n = 10_000
    while True:
        t = time.perf_counter()
        burn(n)
        dt = time.perf_counter() - t
        if dt > 0.02:
            return max(1, int(n * seconds / dt))
        n *= 2


# --- the rows --------------------------------------------------------------------------------------

@contextlib.contextmanager
def _fastq(core, backend):
    from fastq import parallel

    if core == "c":
        from fastq import _core

        import fastq

        process_queue = getattr(_core, "ProcessQueue", fastq.pure.ProcessQueue)
        ParallelQueue = parallel.bind(_core.ReorderBuffer, _core.Queue, process_queue)[0]
    else:
        import fastq.pure as pure

        ParallelQueue = pure.ParallelQueue
    with ParallelQueue(WORKERS, backend=backend) as pq:
        yield pq.map


@contextlib.contextmanager
def _serial():
    yield map


@contextlib.contextmanager
def _pool():
    with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
        yield lambda func, items: pool.imap(func, items, chunksize=1)


@contextlib.contextmanager
def _executor():
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("fork")) as ex:
        yield ex.map


@contextlib.contextmanager
def _mpire():
    from mpire import WorkerPool

    with WorkerPool(WORKERS, start_method="fork") as pool:
        yield lambda func, items: pool.imap(func, items, chunk_size=1)


@contextlib.contextmanager
def _parallel_queue():
    from parallel_queue import ParallelQueue  # noqa: F401  (0.5 is Python 2 only: does not install)

    raise ImportError("parallel-queue has no Python 3 release")


@dataclass(frozen=True)
class Row:
    name: str
    id: str
    open: Callable  # () -> context manager yielding imap(func, items)
    missing: str = ""


ROWS: List[Row] = [
    Row("serial (map)", "serial", _serial),
    Row("fastq.ParallelQueue (C, process)", "fastq-c-process", lambda: _fastq("c", "process"), "the C core"),
    Row("fastq.ParallelQueue (C, thread)", "fastq-c-thread", lambda: _fastq("c", "thread"), "the C core"),
    Row("fastq.pure.ParallelQueue (process)", "fastq-pure-process", lambda: _fastq("python", "process")),
    Row("fastq.pure.ParallelQueue (thread)", "fastq-pure-thread", lambda: _fastq("python", "thread")),
    Row("multiprocessing.Pool.imap (chunksize=1)", "pool-imap", _pool),
    Row("ProcessPoolExecutor.map", "process-pool-executor", _executor),
    Row("mpire WorkerPool.imap (chunk_size=1)", "mpire", _mpire, "mpire (pip install mpire)"),
    Row("parallel-queue 0.5", "parallel-queue", _parallel_queue, "parallel-queue (Python 2 only)"),
]

BASELINE = "multiprocessing.Pool.imap (chunksize=1)"


@dataclass(frozen=True)
class Case:
    name: str
    group: str
    func: Callable
    bench_items: int
    full_items: int
    arg: Callable  # (calibrated burn steps) -> the argument of every task


CASES: List[Case] = [
    Case("trivial function (per-task overhead)", "parallel_trivial", identity, 2_000, 20_000, lambda steps: 1),
    Case("~1 ms CPU-bound function", "parallel_cpu_1ms", burn, 200, 2_000, lambda steps: steps),
]


def time_row(row, case, n, steps, repeat=3):
    """Best seconds per task over `repeat` rounds of an n-item map."""
    items = [case.arg(steps)] * n
    with row.open() as imap:
        for _ in imap(case.func, items[: max(10, n // 20)]):  # warm up: workers started, code paths hot
            pass
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            for _ in imap(case.func, items):
                pass
            best = min(best, time.perf_counter() - t)
    return best / n


def run_quick(repeat=3, full=False, out=print):
    """Print a markdown table: microseconds per task, ratio to Pool.imap, speedup over serial."""
    steps = calibrate()
    times = {}
    skipped = []
    for case in CASES:
        n = case.full_items if full else case.bench_items
        for row in ROWS:
            try:
                times[row.name, case.group] = time_row(row, case, n, steps, repeat)
            except ImportError as exc:
                if row.name not in [s for s, _ in skipped]:
                    skipped.append((row.name, str(exc)))
    cols = [c.group for c in CASES]
    out(f"ordered map, {WORKERS} workers, {os.cpu_count()} CPUs: us per task (x faster than Pool.imap; "
        "speedup over serial)")
    out("| row | " + " | ".join(cols) + " |")
    out("|---|" + "---|" * len(cols))
    for row in ROWS:
        cells = []
        for case in CASES:
            t = times.get((row.name, case.group))
            if t is None:
                cells.append("skipped")
                continue
            base = times.get((BASELINE, case.group))
            serial = times.get(("serial (map)", case.group))
            cell = f"{t * 1e6:.1f}"
            if base:
                cell += f" ({base / t:.2f}x"
                cell += f"; {serial / t:.2f}x serial)" if serial else ")"
            cells.append(cell)
        out(f"| {row.name} | " + " | ".join(cells) + " |")
    for name, why in skipped:
        out(f"skipped {name}: {why}")
    return times


if __name__ == "__main__":  # python -m fastq._bench_parallel [--full]
    import sys

    run_quick(full="--full" in sys.argv)
