"""`python -m fastq`: side-by-side benchmark tables of fastq against the queues it replaces.

The quick tables (the default, under a minute on two cores, no pytest needed): the in-process Queue
family against `queue`; ProcessQueue against multiprocessing.Queue and faster-fifo across processes;
the ordered parallel map (ParallelQueue) against Pool.imap, ProcessPoolExecutor and mpire. Each is the
best of a few timed repeats with time.perf_counter.

`--full` runs the pytest-benchmark suite in bench/ (a source checkout) at full size, plus the two
sweeps, and writes every table as markdown (`--output`). `--plot FILE.png` draws the in-process
speedups, throughput against message size (ProcessQueue and rivals) and against worker count
(ParallelQueue and rivals); it needs matplotlib (`pip install 'fastq-queue[bench]'`). The long runs
(--full, the sweeps) draw a progress bar with an ETA on stderr. Rows and cases live in
fastq.bench.queues, fastq.bench.processes and fastq.bench.parallel.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import parallel, plot, processes, queues, report, sweeps

PROCESS_NOTE = ("across processes: time per item (one put in a producer process + one get in another), "
                f"best of 3; in parentheses the speedup over {processes.PROC_BASELINE}")
PARALLEL_NOTE = ("ordered parallel map, 2 workers: time per task, median of 5 rounds (the rows take turns); in "
                 "parentheses the speedup over Pool.imap and over a serial map (the 1 ms task is where the "
                 "workers pay; the no-queue row is what this machine gives without any queue)")


def _bench_dir():
    """bench/ of the source checkout this fastq was imported from, or of the current directory."""
    here = Path(__file__).resolve().parent.parent  # src/fastq
    for candidate in (here.parent.parent / "bench", Path.cwd() / "bench"):
        if (candidate / "test_bench_queue.py").is_file():
            return candidate
    return None


def _parallel_table(results):
    busy = [c.name for c in parallel.CASES if c.func is not parallel.identity]  # vs serial: only where workers pay
    return report.markdown_table(results, baseline=parallel.BASELINE, also="serial (map)", first="ordered map",
                                 also_cases=busy)


def _skipped_lines(*results):
    return [f"skipped: {name}: {why}" for r in results for name, why in r.skipped.items()]


def _run_suite(bench):
    """Run bench/ at full size; returns the path of its JSON (in a temporary directory) or an exit status."""
    tmp = tempfile.mkdtemp(prefix="fastq-bench-")
    json_path = os.path.join(tmp, "bench.json")
    env = dict(os.environ, FASTQ_BENCH_FULL="1")
    # the child must import this very fastq, wherever it came from
    pkg_parent = str(Path(__file__).resolve().parent.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [pkg_parent, env.get("PYTHONPATH")]))
    # fastq.bench.progress is the report: a bar with an ETA, failures in full, skips, a summary
    # (-o addopts=: the checkout's `-ra` needs the terminal reporter this replaces)
    cmd = [sys.executable, "-m", "pytest", str(bench), "-o", "addopts=", "-p", "no:cacheprovider", "-p", "no:terminal",
           "-p", "fastq.bench.progress", f"--benchmark-json={json_path}"]
    print("running:", " ".join(cmd), flush=True)
    rc = subprocess.call(cmd, cwd=str(bench.parent), env=env)
    if rc != 0 or not os.path.exists(json_path):
        print(f"the bench suite failed (pytest exit status {rc})")
        return rc or 1
    return json_path


def _sweeps(full):
    print(f"sweeps ({'full' if full else 'quick'} sizes): throughput against message size, against worker count",
          flush=True)
    size = sweeps.sweep_message_size(full=full, progress=True)
    workers = sweeps.sweep_worker_count(full=full, progress=True)
    return size, workers


def _sweep_markdown(size, workers):
    return [f"### {size.title}", "", sweeps.sweep_table(size), "",
            f"### {workers.title}", "", sweeps.sweep_table(workers), ""] + _skipped_lines(workers)


def _run_full(args):
    bench = _bench_dir()
    if bench is None:
        print("--full: the pytest-benchmark suite (bench/) ships in the source checkout, not in the wheel; "
              "run this from a checkout (python -m fastq --full, or python -m pytest bench/ -p no:cacheprovider)")
        return 2
    try:
        import pytest_benchmark  # noqa: F401
    except ImportError:
        print("--full needs pytest-benchmark: pip install 'fastq-queue[bench]' (or the test extra)")
        return 2
    t0 = time.monotonic()
    json_path = _run_suite(bench)
    if isinstance(json_path, int):
        return json_path
    thread = report.results_from_benchmark_json(json_path, "thread")
    process = report.results_from_benchmark_json(json_path, "process")
    ordered = report.results_from_benchmark_json(json_path, "parallel")
    size, workers = _sweeps(full=True)
    doc = (["# fastq benchmarks (full suite)", ""]
           + [f"- {line}" for line in report.environment_lines()]
           + [f"- pytest-benchmark medians (bench/, FASTQ_BENCH_FULL=1) and the sweeps; "
              f"{(time.monotonic() - t0) / 60:.0f} minutes in all", "",
              "## In-process queues", "",
              f"Time per item (one put + one get); in parentheses the speedup over {report.BASELINE}.", "",
              report.markdown_table(thread), "",
              "## Across processes", "",
              f"Time per item (a put in one process, a get in another); in parentheses the speedup over "
              f"{processes.PROC_BASELINE}.", "",
              report.markdown_table(process, baseline=processes.PROC_BASELINE), "",
              "## Ordered parallel map", "",
              "Time per task with 2 workers; in parentheses the speedup over Pool.imap and over a serial map.", "",
              _parallel_table(ordered), "",
              "## Sweeps", ""]
           + _sweep_markdown(size, workers))
    Path(args.output).write_text("\n".join(doc) + "\n", encoding="utf-8")
    print("\n".join(doc))
    print(f"\nwritten to {args.output}")
    return thread, size, workers


def _run_quick(args):
    print("in-process queues: time per item (one put + one get), best of "
          f"{args.repeat}; in parentheses the speedup over {report.BASELINE} (higher is faster)\n", flush=True)
    thread = queues.run_quick(repeat=args.repeat)
    print(report.markdown_table(thread))
    print("\ncases: " + "; ".join(f"{c.name}: {c.doc}" for c in queues.CASES))

    print(f"\n{PROCESS_NOTE}\n", flush=True)
    process = processes.run_quick_process()
    print(report.markdown_table(process, baseline=processes.PROC_BASELINE))

    print(f"\n{PARALLEL_NOTE}\n", flush=True)
    ordered = parallel.run_quick_parallel()
    print(_parallel_table(ordered))

    for line in _skipped_lines(thread, process, ordered):
        print(line)
    size = workers = None
    if args.plot:
        size, workers = _sweeps(full=False)
        print()
        print("\n".join(_sweep_markdown(size, workers)))
    print("full suite (pytest-benchmark, full sizes, sweeps, markdown): python -m fastq --full [--plot FILE.png]")
    return thread, size, workers


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastq", description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true",
                        help="run the pytest-benchmark suite in bench/ at full size and the sweeps (minutes), "
                             "and write every table as markdown")
    parser.add_argument("--output", default="fastq-bench.md", metavar="FILE.md",
                        help="where --full writes its markdown (default: %(default)s)")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="also draw the in-process speedups and throughput against message size (ProcessQueue) "
                             "and worker count (ParallelQueue); needs matplotlib")
    parser.add_argument("--repeat", type=int, default=5, help="quick in-process table: best of N timed runs "
                        "(default: %(default)s)")
    args = parser.parse_args(argv)

    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print(f"--plot: matplotlib is not installed (pip install matplotlib, or 'fastq-queue[bench]'); "
                  f"{args.plot} not written", file=sys.stderr)
            return 1

    for line in report.environment_lines():
        print(line)
    outcome = _run_full(args) if args.full else _run_quick(args)
    if isinstance(outcome, int):
        return outcome
    thread, size, workers = outcome
    if args.plot:
        plot.plot(thread, args.plot, size_sweep=size, worker_sweep=workers)
        print(f"plot written to {args.plot}")
    return 0
