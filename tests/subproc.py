"""Run Python in a fresh interpreter that imports the same fastq as this test run (its sys.path)."""
import os
import subprocess
import sys


def run_python(*args, timeout=120, **kwargs):
    """subprocess.run([sys.executable, *args]), output captured as text."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=timeout,
                          **kwargs)
