"""Ordered parallel map: fastq.ParallelQueue against its rivals (rows x cases, as in fastq.bench.queues).

Every row is an ordered `imap(func, items)` over a pool of WORKERS workers, opened once outside the
timing. The cases: a trivial function (the per-task overhead) and a ~1 ms CPU-bound one (the
speedup over running it serially). bench/test_bench_parallel.py times these with pytest-benchmark;
run_quick() prints the same table without pytest; run_quick_parallel() gives it to `python -m fastq`.
`python -m fastq.bench.parallel --case GROUP ...` is a focused run of one case.
"""
import contextlib
import multiprocessing
import os
import statistics
import time
from dataclasses import dataclass
from typing import Callable, List

from .report import Results

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
def _fastq(core, backend, chunksize=None):
    import fastq

    if core == "c" and fastq.IMPLEMENTATION != "c":
        raise ImportError("fastq runs on its pure cores here (C core not built, or FASTQ_NO_EXTENSIONS=1 at run time)")
    ParallelQueue = fastq.ParallelQueue if core == "c" else fastq.pure.ParallelQueue
    with ParallelQueue(WORKERS, backend=backend) as pq:
        yield lambda func, items: pq.map(func, items, chunksize=chunksize)


@contextlib.contextmanager
def _serial():
    yield map


def _share_worker(conn):
    while True:
        job = conn.recv()
        if job is None:
            return
        func, items = job
        for item in items:
            func(item)
        conn.send(None)


@contextlib.contextmanager
def _split():
    """WORKERS processes, started once, each running a fixed share of the items (one message each
    way per map, results dropped): the parallelism this machine gives at the moment with no queue
    in the way. Not a strict ceiling: a fixed split waits for its slowest share, where a queue
    hands the next task to whichever worker is free."""
    ctx = multiprocessing.get_context("fork")
    pipes, procs = [], []
    for _ in range(WORKERS):
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(target=_share_worker, args=(theirs,), daemon=True)
        proc.start()
        pipes.append(ours)
        procs.append(proc)

    def run(func, items):
        for i, conn in enumerate(pipes):
            conn.send((func, items[i::WORKERS]))
        for conn in pipes:
            conn.recv()
        return iter(())

    try:
        yield run
    finally:
        for conn in pipes:
            conn.send(None)
        for proc in procs:
            proc.join()


def pool_chunksize(items):
    """Pool.map's rule, ceil(items / (4 x workers)): Pool.imap and Executor.map pick no chunk size
    by themselves (1), so the rows that group are given this one, beside fastq's automatic groups."""
    return max(1, -(-items // (4 * WORKERS)))


@contextlib.contextmanager
def _pool(auto=False):
    with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
        yield lambda func, items: pool.imap(func, items, chunksize=pool_chunksize(len(items)) if auto else 1)


@contextlib.contextmanager
def _executor(auto=False):
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("fork")) as ex:
        yield lambda func, items: ex.map(func, items, chunksize=pool_chunksize(len(items)) if auto else 1)


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
    only: str = ""  # the one case group it runs in, if not all


ROWS: List[Row] = [
    Row("serial (map)", "serial", _serial),
    Row("no queue: the items split evenly between processes", "split", _split,
        only="parallel_cpu_1ms"),
    Row("fastq.ParallelQueue (C, process)", "fastq-c-process", lambda: _fastq("c", "process"), "the C core"),
    Row("fastq.ParallelQueue (C, process, chunksize=1)", "fastq-c-process-1", lambda: _fastq("c", "process", 1),
        "the C core"),
    Row("fastq.ParallelQueue (C, thread)", "fastq-c-thread", lambda: _fastq("c", "thread"), "the C core"),
    Row("fastq.pure.ParallelQueue (process)", "fastq-pure-process", lambda: _fastq("python", "process")),
    Row("fastq.pure.ParallelQueue (process, chunksize=1)", "fastq-pure-process-1",
        lambda: _fastq("python", "process", 1)),
    Row("fastq.pure.ParallelQueue (thread)", "fastq-pure-thread", lambda: _fastq("python", "thread")),
    Row("multiprocessing.Pool.imap (chunksize=1)", "pool-imap", _pool),
    Row("multiprocessing.Pool.imap (chunksize=ceil(n/4w))", "pool-imap-chunked", lambda: _pool(auto=True)),
    Row("ProcessPoolExecutor.map", "process-pool-executor", _executor),
    Row("ProcessPoolExecutor.map (chunksize=ceil(n/4w))", "process-pool-executor-chunked",
        lambda: _executor(auto=True)),
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


def _once(imap, case, items):
    t = time.perf_counter()
    for _ in imap(case.func, items):
        pass
    return time.perf_counter() - t


def time_row(row, case, n, steps, repeat=3):
    """Best seconds per task over `repeat` rounds of an n-item map."""
    items = [case.arg(steps)] * n
    with row.open() as imap:
        _once(imap, case, items[: max(10, n // 20)])  # warm up: workers started, code paths hot
        return min(_once(imap, case, items) for _ in range(repeat)) / n


def time_rows(rows, case, n, steps, rounds=5):
    """({row name: median seconds per task}, [(row name, why not) for rows missing here]): every
    row open at once, one n-item map of each per round, the rows taking turns, so a slow spell of
    a shared machine falls on all of them."""
    items = [case.arg(steps)] * n
    times, skipped = {}, []
    with contextlib.ExitStack() as stack:
        maps = []
        for row in rows:
            try:
                imap = stack.enter_context(row.open())
            except ImportError as exc:
                skipped.append((row.name, str(exc)))
                continue
            _once(imap, case, items[: max(10, n // 20)])  # warm up
            maps.append((row.name, imap))
        for _ in range(rounds):
            for name, imap in maps:
                times.setdefault(name, []).append(_once(imap, case, items))
    return {name: statistics.median(ts) / n for name, ts in times.items()}, skipped


def rows_for(case):
    """The rows that run in `case` (a row may be for one case only)."""
    return [row for row in ROWS if not row.only or row.only == case.group]


def run_quick(repeat=5, full=False, out=print):
    """Print a markdown table: microseconds per task (median of `repeat` rounds, the rows taking
    turns), ratio to Pool.imap, speedup over serial."""
    steps = calibrate()
    times = {}
    skipped = []
    for case in CASES:
        n = case.full_items if full else case.bench_items
        timed, missing = time_rows(rows_for(case), case, n, steps, repeat)
        skipped += [s for s in missing if s not in skipped]
        for name, t in timed.items():
            times[name, case.group] = t
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
                cells.append("skipped" if not row.only else "-")
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


def parallel_results(times):
    """Results from run_quick()'s {(row name, case group): seconds per task}."""
    results = Results()
    for case in CASES:
        for row in ROWS:
            t = times.get((row.name, case.group))
            if t is None:
                continue
            if row.name not in results.rows:
                results.rows.append(row.name)
            if case.name not in results.cases:
                results.cases.append(case.name)
            results.per_item.setdefault(row.name, {})[case.name] = t
    order = [r.name for r in ROWS]
    results.rows.sort(key=order.index)
    for row in ROWS:
        if row.name not in results.rows:
            results.skipped[row.name] = row.missing or "not installed"
    return results


def run_quick_parallel(repeat=5, full=False):
    """The ordered-map table (ROWS x CASES) as Results: seconds per task."""
    return parallel_results(run_quick(repeat=repeat, full=full, out=lambda *a: None))


def main(argv=None):
    """python -m fastq.bench.parallel [--full] | --case GROUP [--rows ID,...] [--items N] [--rounds R]"""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m fastq.bench.parallel", description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="the table at full size")
    parser.add_argument("--case", choices=[c.group for c in CASES], help="one case only: a longer, focused run")
    parser.add_argument("--rows", help="row ids, comma-separated (with --case; default: every row)")
    parser.add_argument("--items", type=int, help="tasks per round (with --case)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, the rows taking turns (default: 5)")
    args = parser.parse_args(argv)
    if args.case is None:
        run_quick(repeat=args.rounds, full=args.full)
        return
    case = next(c for c in CASES if c.group == args.case)
    rows = rows_for(case)
    if args.rows:
        wanted = args.rows.split(",")
        rows = [r for r in rows if r.id in wanted]
    n = args.items or (case.full_items if args.full else case.bench_items)
    times, skipped = time_rows(rows, case, n, calibrate(), args.rounds)
    serial = times.get("serial (map)")
    split = next((t for r, t in times.items() if r.startswith("no queue")), None)
    print(f"{case.name}, {n} tasks per round, median of {args.rounds} rounds, {WORKERS} workers, {os.cpu_count()} CPUs")
    for name, t in times.items():
        extra = f"  {serial / t:.2f}x serial" if serial else ""
        if split and serial:
            extra += f", {split / t:.0%} of the no-queue split's speed"
        print(f"  {name:70s} {t * 1e6:10.1f} us{extra}")
    for name, why in skipped:
        print(f"  skipped {name}: {why}")


if __name__ == "__main__":
    main()
