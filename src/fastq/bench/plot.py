"""The picture: in-process speedups (bars), and the sweeps (lines); needs matplotlib."""
import platform

from .report import BASELINE, _cpu_count, _fastq_version
from .sweeps import _fmt_size

def _bars(ax, results, baseline, title):
    base = results.per_item.get(baseline, {})
    cases = [c for c in results.cases if c in base]
    rows = [r for r in results.rows if any(c in results.per_item.get(r, {}) for c in cases)]
    width = 0.8 / max(1, len(rows))
    for i, row in enumerate(rows):
        ys = [base[c] / results.per_item[row][c] if c in results.per_item.get(row, {}) else 0 for c in cases]
        ax.bar([x + i * width for x in range(len(cases))], ys, width, label=row)
    ax.set_xticks([x + width * (len(rows) - 1) / 2 for x in range(len(cases))])
    ax.set_xticklabels([c.replace(", ", ",\n") for c in cases], fontsize="small")
    ax.set_yscale("log")
    ax.axhline(1.0, color="gray", linewidth=0.8)
    ax.set_ylabel(f"speedup over {baseline}\n(log scale; higher is faster)")
    ax.set_title(title)
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _lines(ax, sweep, logx):
    for row, ys in sweep.y.items():
        xs = [x for x in sweep.xs if x in ys]
        ax.plot(xs, [ys[x] for x in xs], marker="o", label=row)
    if sweep.reference is not None:
        ax.axhline(sweep.reference, color="gray", linestyle="--", linewidth=1, label=sweep.reference_label)
    if logx:
        ax.set_xscale("log", base=2)
        ax.set_xticks(sweep.xs)
        ax.set_xticklabels([_fmt_size(x) for x in sweep.xs], fontsize="small")
        ax.set_yscale("log")
    else:
        ax.set_xticks(sweep.xs)
        ax.set_ylim(bottom=0)
    ax.set_xlabel(sweep.xlabel)
    ax.set_ylabel(sweep.ylabel)
    ax.set_title(sweep.title, fontsize="medium")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))


def plot(results, path, baseline=BASELINE, size_sweep=None, worker_sweep=None, machine=None):
    """Draw to `path`: the in-process speedups over `baseline` (bars), and when given, throughput
    against message size (ProcessQueue and rivals) and against worker count (ParallelQueue and rivals).
    Raises ImportError without matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 1 + (size_sweep is not None) + (worker_sweep is not None)
    fig, axes = plt.subplots(panels, 1, figsize=(11, 4.2 * panels), squeeze=False)
    axes = [a[0] for a in axes]
    _bars(axes[0], results, baseline, "in-process queues")
    i = 1
    if size_sweep is not None:
        _lines(axes[i], size_sweep, logx=True)
        i += 1
    if worker_sweep is not None:
        _lines(axes[i], worker_sweep, logx=False)
    fig.suptitle(machine or f"fastq {_fastq_version()}, Python {platform.python_version()}, "
                 f"{platform.system()} {platform.machine()}, {_cpu_count()} CPUs")
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(path, dpi=110)
    plt.close(fig)
