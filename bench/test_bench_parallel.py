"""Ordered parallel map with 2 workers: fastq.ParallelQueue (C and pure cores; process and thread
backends) against multiprocessing.Pool.imap (chunksize=1), ProcessPoolExecutor.map, mpire and a
serial map. Rows and cases live in fastq.bench.parallel (shared with run_quick()).

Each round maps a known number of items (extra_info items_per_round), so a time per round divides
into a time per task. At the end of the module a table of microseconds per task is printed, with the
ratio to Pool.imap and, for the 1 ms case, the speedup over the serial map.

    .venv/bin/python -m pytest bench/test_bench_parallel.py -p no:cacheprovider
"""
import contextlib

import pytest

from fastq.bench import parallel as bp

ROUNDS = 5
_medians = {}  # (row name, case group) -> seconds per task


@pytest.fixture(scope="module")
def steps():
    return bp.calibrate()


@pytest.fixture(scope="module", autouse=True)
def per_task_table(request):
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or not _medians:
        return
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        _write_table(reporter)


def _write_table(reporter):
    reporter.write_line("")
    reporter.write_line(f"ordered map, {bp.WORKERS} workers: median us per task "
                        "(x faster than Pool.imap; speedup over serial)")
    width = max(len(row.name) for row in bp.ROWS)
    for case in bp.CASES:
        base = _medians.get((bp.BASELINE, case.group))
        serial = _medians.get(("serial (map)", case.group))
        reporter.write_line(f"  {case.name}:")
        for row in bp.ROWS:
            t = _medians.get((row.name, case.group))
            if t is None:
                continue
            extra = []
            if base:
                extra.append(f"{base / t:.2f}x Pool.imap")
            if serial and case.func is not bp.identity:
                extra.append(f"{serial / t:.2f}x serial")
            reporter.write_line(f"    {row.name:{width}s} {t * 1e6:9.1f} us  ({'; '.join(extra)})")


PAIRS = [(case, row) for case in bp.CASES for row in bp.rows_for(case)]


@pytest.mark.parametrize("case,row", PAIRS, ids=[f"{case.group}-{row.id}" for case, row in PAIRS])
def test_parallel_map(benchmark, bench_full, steps, case, row):
    n = case.full_items if bench_full else case.bench_items
    items = [case.arg(steps)] * n
    try:
        opened = row.open()
        imap = opened.__enter__()
    except ImportError as exc:
        pytest.skip(f"{row.name}: {row.missing or 'not installed'}: {exc}")
    try:
        for _ in imap(case.func, items[: max(10, n // 20)]):  # workers started, code paths warm
            pass

        def work():
            for _ in imap(case.func, items):
                pass

        benchmark.group = f"{case.group}: {case.name}, {n:,} tasks per round, {bp.WORKERS} workers"
        benchmark.extra_info.update(row=row.id, case=case.group, items_per_round=n, workers=bp.WORKERS)
        benchmark.pedantic(work, rounds=ROUNDS, iterations=1, warmup_rounds=0)
        stats = getattr(getattr(benchmark, "stats", None), "stats", None)
        if stats is not None:
            _medians[row.name, case.group] = stats.median / n
    finally:
        opened.__exit__(None, None, None)
