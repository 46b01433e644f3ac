"""Each program in examples/ runs (short sizes) and prints what its docstring and the README say."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

CASES = {
    "pipeline_threads.py": (["20"], "processed 20 items in order: True\n"),
    "iterable_processes.py": ([], "consumed 30 items from 3 producers, each once: True\n"),
    "ordered_parallel.py": (["3"], "batch 0: [0, 1, 4, 9, 16]\nbatch 1: [25, 36, 49, 64, 81]\n"
                                   "batch 2: [100, 121, 144, 169, 196]\n"),
    "dask_stream.py": (["100"], "22\nfirst 5 of 100: [2, 4, 6, 8, 10]\n"),
    "asyncio_server.py": ([], "answered 20 requests from 2 worker processes, all correct: True\n"),
}


def test_every_example_is_covered():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(CASES)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", sorted(CASES))
def test_example_prints_what_it_says(name):
    if name == "dask_stream.py":
        pytest.importorskip("distributed")
    args, expected = CASES[name]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True,
                          text=True, timeout=170, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected
