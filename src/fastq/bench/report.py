"""Results and how they are shown: markdown tables with speedups, pytest-benchmark JSON read back,
the environment lines every report starts with."""
import json
import os
import platform
import sys
from dataclasses import dataclass, field
from time import perf_counter
from typing import Dict, List

BASELINE = "queue.Queue"  # the in-process tables' ratios are speedups over this row


@dataclass
class Results:
    """Seconds per item: per_item[row name][case name]; skipped rows with their reasons."""

    rows: List[str] = field(default_factory=list)
    cases: List[str] = field(default_factory=list)
    per_item: Dict[str, Dict[str, float]] = field(default_factory=dict)
    skipped: Dict[str, str] = field(default_factory=dict)


def best_per_item(work, n, repeat):
    """Best of `repeat` timed calls of work() (after one untimed warm-up), in seconds per item."""
    work()
    best = float("inf")
    for _ in range(repeat):
        t0 = perf_counter()
        work()
        best = min(best, perf_counter() - t0)
    return best / n


FAMILIES = ("thread", "process", "parallel")


def _family_maps():
    """{family: ({row id: row name}, {case group: case name}, [row names in order])}."""
    from . import parallel as bp, processes, queues  # here: they import this module

    return {
        "thread": ({r.id: r.name for r in queues.ROWS}, {c.group: c.name for c in queues.CASES},
                   [r.name for r in queues.ROWS]),
        "process": ({**{r.id: r.name for r in processes.PROC_ROWS}, processes.FLOOR_ID: processes.FLOOR_NAME,
                     processes.MEMCPY_ID: processes.MEMCPY_NAME, processes.MEMCPY_SHM_ID: processes.MEMCPY_SHM_NAME},
                    {c.group: c.name for c in processes.PROC_CASES},
                    [r.name for r in processes.PROC_ROWS]
                    + [processes.FLOOR_NAME, processes.MEMCPY_NAME, processes.MEMCPY_SHM_NAME]),
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


def _fastq_version():
    import fastq

    return fastq.__version__
