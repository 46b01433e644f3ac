"""CPython's own Lib/test/test_queue.py, unchanged, passes against both cores (tests/cpython_queue_runner.py)."""
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import importlib.util

import pytest

if importlib.util.find_spec("test.test_queue") is None:  # some distributions strip Lib/test
    pytest.skip("this Python ships without CPython's test suite (Lib/test)", allow_module_level=True)

import cpython_queue_runner  # noqa: E402
import fastq

RUNNER = Path(__file__).with_name("cpython_queue_runner.py")


def _env_for_this_fastq():
    """The subprocess must test the fastq this session imported (a source tree or an install)."""
    env = dict(os.environ)
    package_parent = str(Path(fastq.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    return env


@pytest.mark.timeout(600)
def test_cpython_test_queue_passes(impl, tmp_path):
    group = "pure" if impl.is_pure_python else "c"
    proc = subprocess.run(
        [sys.executable, str(RUNNER), "--impl", group],
        cwd=tmp_path,  # nothing importable by accident from the working directory
        env=_env_for_this_fastq(),
        capture_output=True,
        text=True,
        timeout=580,
    )
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, report
    match = re.search(rf"SUMMARY .*\b{group}:ran=(\d+),failures=(\d+),errors=(\d+)", proc.stdout)
    assert match, report
    ran, failures, errors = map(int, match.groups())
    assert ran > 20 and failures == 0 and errors == 0, report
    assert f"fastq {fastq.__version__} from {fastq.__file__}" in proc.stdout


def test_runner_substitutes_fastq_for_queue(impl):
    """In process: the test classes CPython's module builds are fastq's, never the stdlib's."""
    import queue

    group = "pure" if impl.is_pure_python else "c"
    results, c_error, module = cpython_queue_runner.run(
        group, verbosity=0, name_patterns=["test_basic"], stream=io.StringIO()
    )
    assert c_error is None or impl.is_pure_python
    result = results[group]
    assert result.testsRun >= 4 and result.wasSuccessful(), result.failures + result.errors
    ns = module.py_queue if impl.is_pure_python else module.c_queue
    assert ns.Queue is impl.Queue and ns.SimpleQueue is impl.SimpleQueue
    assert ns.Queue is not queue.Queue and ns.Empty is queue.Empty
    assert module.PyQueueTest.queue is module.py_queue and module.CQueueTest.queue is module.c_queue
