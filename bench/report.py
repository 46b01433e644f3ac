"""Turn a pytest-benchmark JSON file from bench/ into a markdown table of times per item and speedups.

    python -m pytest bench/ -p no:cacheprovider --benchmark-json=bench.json
    python bench/report.py bench.json [--baseline queue.Queue] [--plot speedups.png]

Each cell is the median time per item (one put + one get) and, in parentheses, the speedup over the
baseline row (queue.Queue by default; higher is faster).
"""
import argparse
import sys

from fastq.bench import plot, report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", help="a file written by --benchmark-json")
    parser.add_argument("--baseline", default=report.BASELINE, help="the row ratios are taken against")
    parser.add_argument("--plot", metavar="FILE.png", help="also draw the speedups (needs matplotlib)")
    args = parser.parse_args(argv)
    results = report.results_from_benchmark_json(args.json)
    if not results.rows:
        print(f"{args.json}: no benchmarks from bench/ in it", file=sys.stderr)
        return 1
    print(report.markdown_table(results, baseline=args.baseline))
    if args.plot:
        try:
            plot.plot(results, args.plot, baseline=args.baseline)
        except ImportError:
            print("--plot needs matplotlib (pip install matplotlib)", file=sys.stderr)
            return 1
        print(f"plot written to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
