"""The sweeps: throughput against message size (ProcessQueue and rivals) and against worker count
(ParallelQueue and rivals), for `python -m fastq --full` and --plot."""
import contextlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from . import parallel as bp
from .progress import bar
from .processes import MiB, ProcCase, available_process_rows, time_process_case


SIZES_QUICK = [64, 1024, 16 * 1024, 256 * 1024, 512 * 1024, 4 * MiB]  # 256 KiB: in the default ring; 512 KiB: spilled
SIZES_FULL = [8, 64, 512, 4 * 1024, 32 * 1024, 256 * 1024, 512 * 1024, 2 * MiB, 16 * MiB]
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


def sweep_message_size(full=False, repeat=3, progress=False):
    """MiB/s through each ProcessQueue row, one producer process -> this process, bytes items of each
    size; `progress`: a bar on stderr."""
    sizes = SIZES_FULL if full else SIZES_QUICK
    rows, skipped = available_process_rows()
    rows = [row for row in rows if row.kind != "fastq-view"]  # bytes items are copied either way
    sweep = Sweep("ProcessQueue: one producer process -> one consumer, bytes items",
                  "message size (bytes)", "throughput (MiB/s)", sizes, skipped=skipped)
    budget = (256 if full else 32) * MiB  # bytes per round, within [16, 20k (100k full)] items
    step = bar(len(sizes) * len(rows), "sweep: message size", progress)
    for size in sizes:
        n = max(16, min(100_000 if full else 20_000, budget // size))
        case = ProcCase(_fmt_size(size), f"size_{size}", ("bytes", size), n, n)
        for row in rows:
            step(f"{row.name}: {_fmt_size(size)} x {n}")
            per_item = time_process_case(row, case, n, repeat)
            sweep.y.setdefault(row.name, {})[size] = size / per_item / MiB
    step.done()
    return sweep


@contextlib.contextmanager
def _workers(count):
    saved = bp.WORKERS
    bp.WORKERS = count  # the rows' pools read it when they open
    try:
        yield
    finally:
        bp.WORKERS = saved


def sweep_worker_count(full=False, repeat=2, progress=False):
    """Tasks per second through each ordered-map row, a ~1 ms CPU-bound task, per worker count;
    `progress`: a bar on stderr."""
    counts = WORKER_COUNTS_FULL if full else WORKER_COUNTS_QUICK
    steps = bp.calibrate()
    case = next(c for c in bp.CASES if c.func is bp.burn)
    n = 1000 if full else 200
    sweep = Sweep(f"ordered map of a ~1 ms CPU-bound task ({n} tasks per round)", "workers",
                  "throughput (tasks/s)", counts, reference_label="serial map")
    rows = [row for row in bp.rows_for(case) if row.id != "serial"]
    step = bar(1 + len(rows) * len(counts), "sweep: worker count", progress)
    step("serial map")
    sweep.reference = 1 / bp.time_row(next(r for r in bp.ROWS if r.id == "serial"), case, n, steps, repeat)
    for row in rows:
        for i, count in enumerate(counts):
            step(f"{row.name}: {count} workers")
            try:
                with _workers(count):
                    per_task = bp.time_row(row, case, n, steps, repeat)
            except ImportError as exc:
                sweep.skipped[row.name] = f"{row.missing or 'not installed'}: {exc}"
                step.skip(len(counts) - i - 1)
                break
            sweep.y.setdefault(row.name, {})[count] = 1 / per_task
    step.done()
    return sweep


def sweep_table(sweep, fmt="{:.0f}"):
    head = [(_fmt_size(x) if "size" in sweep.xlabel else str(x)) for x in sweep.xs]
    lines = [f"| {sweep.ylabel} / {sweep.xlabel} | " + " | ".join(head) + " |", "|---" + "|---:" * len(head) + "|"]
    for row, ys in sweep.y.items():
        lines.append(f"| {row} | " + " | ".join(fmt.format(ys[x]) if x in ys else "-" for x in sweep.xs) + " |")
    if sweep.reference is not None:
        lines.append(f"| {sweep.reference_label} | " + " | ".join(fmt.format(sweep.reference) for _ in sweep.xs) + " |")
    return "\n".join(lines)
