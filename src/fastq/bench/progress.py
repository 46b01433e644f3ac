"""Progress for the long runs (`python -m fastq --full`, the sweeps): a text bar with an ETA on stderr.

bar(total, label) returns a Progress: call it with what starts next, once per step. On a terminal
the bar redraws in place; elsewhere (a log) each step is a line. Loaded as a pytest plugin
(`-p fastq.bench.progress`, with `-p no:terminal`), it is the bench suite's whole report: the bar,
each failure in full, the skips and a summary line.
"""
import shutil
import sys
from time import monotonic

WIDTH = 24


def _duration(seconds):
    seconds = int(seconds + 0.5)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    def __init__(self, total, label, stream=None):
        self.total = max(1, total)
        self.label = label
        self.stream = stream or sys.stderr
        self.started = 0
        self.t0 = monotonic()
        self.tty = self.stream.isatty()

    def __call__(self, what=""):
        """`what` starts now (the steps before it are done)."""
        self._draw(self.started, what)
        self.started += 1

    def skip(self, steps):
        """`steps` will not run (a row missing here): count them as done."""
        self.started += steps

    def done(self):
        self._draw(self.total, f"done in {_duration(monotonic() - self.t0)}")
        if self.tty:
            self.stream.write("\n")
        self.stream.flush()

    def _draw(self, done, what):
        elapsed = monotonic() - self.t0
        filled = WIDTH * done // self.total
        eta = f", ETA {_duration(elapsed / done * (self.total - done))}" if 0 < done < self.total else ""
        line = f"{self.label} [{'#' * filled}{'.' * (WIDTH - filled)}] {done}/{self.total}{eta}  {what}"
        if self.tty:
            columns = shutil.get_terminal_size().columns
            self.stream.write("\r" + line[:columns - 1] + "\x1b[K")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


class _Quiet:
    def __call__(self, what=""):
        pass

    def skip(self, steps):
        pass

    def done(self):
        pass


def bar(total, label, show=True):
    """A Progress over `total` steps, or one that draws nothing when `show` is false."""
    return Progress(total, label) if show else _Quiet()


# --- as a pytest plugin ---------------------------------------------------------------------------

_state: dict = {}  # the run's progress bar and counts, filled at collection


def pytest_collection_finish(session):
    _state.update(bar=bar(len(session.items), "bench suite"), failed=[], skipped=[], passed=0, t0=monotonic())


def pytest_runtest_logstart(nodeid, location):
    _state["bar"](nodeid.split("::")[-1])


def pytest_collectreport(report):
    if report.failed:
        sys.stderr.write(f"\nERROR collecting {report.nodeid}\n{report.longreprtext}\n")


def pytest_runtest_logreport(report):
    if report.failed:
        _state["failed"].append(report.nodeid)
        sys.stderr.write(f"\nFAILED {report.nodeid} ({report.when})\n{report.longreprtext}\n")
    elif report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _state["skipped"].append(f"{report.nodeid}: {reason}")
    elif report.when == "call":
        _state["passed"] += 1


def pytest_sessionfinish(session, exitstatus):
    if "bar" not in _state:
        return
    _state["bar"].done()
    for line in _state["skipped"]:
        sys.stderr.write(f"skipped {line}\n")
    sys.stderr.write(f"bench suite: {_state['passed']} passed, {len(_state['skipped'])} skipped, "
                     f"{len(_state['failed'])} failed in {_duration(monotonic() - _state['t0'])}\n")
