"""`python -m fastq`: a side-by-side benchmark table of fastq against the queues it replaces.

The quick table (the default) times every in-process row on every case, best of a few repeats with
time.perf_counter, and finishes well under a minute without pytest. `--full` runs the pytest-benchmark
suite in bench/ (a source checkout) at full size and writes its table as markdown; `--plot FILE.png`
draws the speedups (needs matplotlib). The rows and cases live in fastq._bench.
"""
import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from . import _bench


def _print_header(out=sys.stdout):
    for line in _bench.environment_lines():
        print(line, file=out)


def _print_skipped(results):
    for name, reason in results.skipped.items():
        print(f"skipped: {name}: {reason}")


def _bench_dir():
    """bench/ of the source checkout this fastq was imported from, or of the current directory."""
    here = Path(__file__).resolve().parent  # src/fastq
    for candidate in (here.parent.parent / "bench", Path.cwd() / "bench"):
        if (candidate / "test_bench_queue.py").is_file():
            return candidate
    return None


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
    print("later rows, not in the suite yet:")
    for planned in _bench.PLANNED:
        print(f"  - {planned}")
    with tempfile.TemporaryDirectory() as tmp:
        json_path = os.path.join(tmp, "bench.json")
        env = dict(os.environ, FASTQ_BENCH_FULL="1")
        # the child must import this very fastq, wherever it came from
        pkg_parent = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [pkg_parent, env.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "pytest", str(bench), "-p", "no:cacheprovider", "-q",
               f"--benchmark-json={json_path}", "--benchmark-columns=min,median,max,rounds"]
        print("running:", " ".join(cmd), flush=True)
        rc = subprocess.call(cmd, cwd=str(bench.parent), env=env)
        if rc != 0 or not os.path.exists(json_path):
            print(f"the bench suite failed (pytest exit status {rc})")
            return rc or 1
        results = _bench.results_from_benchmark_json(json_path)
    table = _bench.markdown_table(results)
    doc = "\n".join(
        ["# fastq benchmarks (full suite)", ""]
        + [f"- {line}" for line in _bench.environment_lines()]
        + ["- median time per item (one put + one get); in parentheses the speedup over queue.Queue", "", table, ""]
    )
    Path(args.output).write_text(doc, encoding="utf-8")
    print()
    print(table)
    print(f"\nwritten to {args.output}")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastq", description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true",
                        help="run the pytest-benchmark suite in bench/ at full size (minutes) and write a markdown table")
    parser.add_argument("--output", default="fastq-bench.md", metavar="FILE.md",
                        help="where --full writes its markdown table (default: %(default)s)")
    parser.add_argument("--plot", metavar="FILE.png", help="also draw the speedups as a bar chart (needs matplotlib)")
    parser.add_argument("--repeat", type=int, default=5, help="quick table: best of N timed runs (default: %(default)s)")
    args = parser.parse_args(argv)

    _print_header()
    if args.full:
        results = _run_full(args)
        if isinstance(results, int):
            return results
    else:
        print("in-process queues: time per item (one put + one get), best of "
              f"{args.repeat}; in parentheses the speedup over {_bench.BASELINE} (higher is faster)\n", flush=True)
        results = _bench.run_quick(repeat=args.repeat)
        print(_bench.markdown_table(results))
        _print_skipped(results)
        print("\ncases: " + "; ".join(f"{c.name}: {c.doc}" for c in _bench.CASES))
        print("full suite (pytest-benchmark, 1M-item handoff): python -m fastq --full")

    if args.plot:
        try:
            _bench.plot(results, args.plot)
        except ImportError:
            print(f"--plot: matplotlib is not installed (pip install matplotlib, or 'fastq-queue[bench]'); "
                  f"{args.plot} not written", file=sys.stderr)
            return 1
        print(f"plot written to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
