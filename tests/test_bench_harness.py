"""The benchmark harness (fastq.bench): out of `import fastq`'s way, reachable through `python -m fastq`,
and its progress bar."""
import io
import subprocess
import sys

from fastq.bench import progress


def test_python_m_fastq_answers_and_the_focused_run_keeps_its_name():
    for module in ("fastq", "fastq.bench.parallel"):
        out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert f"python -m {module}" in out.stdout


def test_the_bar_counts_steps_and_gives_an_eta():
    stream = io.StringIO()  # not a terminal: a line per step
    bar = progress.Progress(4, "sweep", stream)
    for what in ("a", "b", "c"):
        bar(what)
    bar.skip(1)
    bar.done()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("sweep [......") and lines[0].endswith("0/4  a")
    assert "1/4, ETA " in lines[1] and lines[1].endswith("b")
    assert lines[-1].startswith("sweep [" + "#" * progress.WIDTH + "] 4/4") and "done in" in lines[-1]


def test_a_quiet_bar_draws_nothing(capsys):
    bar = progress.bar(3, "x", show=False)
    bar("a")
    bar.skip(2)
    bar.done()
    assert capsys.readouterr() == ("", "")
