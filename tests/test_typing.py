"""fastq's types: mypy --strict over a user's program (clean) and over wrong uses (exactly the marked
errors), stubtest of the stubs and annotations against the package at run time
(tests/typing/check.py does both; .ci/run runs it too), the user's program run for real, and every
generic class subscripted at run time as `queue.Queue[int]` is.

The type checks need mypy (the `typing` extra; .ci/run installs it): without it they skip.
"""
import importlib
import importlib.util
import os
import subprocess
import sys
import types

import pytest

import fastq

TYPING = os.path.join(os.path.dirname(os.path.abspath(__file__)), "typing")


def _check():
    pytest.importorskip("mypy", reason="the type checks need mypy (pip install 'fastq-queue[typing]')")
    sys.path.insert(0, TYPING)
    try:
        return importlib.import_module("check")
    finally:
        sys.path.remove(TYPING)


def test_mypy_strict_passes_the_user_program_and_flags_exactly_the_wrong_uses():
    problems = _check().check_mypy()
    assert not problems, "\n".join(problems)


def test_stubtest_matches_the_stubs_and_annotations_to_the_package():
    check = _check()
    for module in ("fastq._core", "fastq._shm"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not built here: the stubs describe the C build")
    problems = check.check_stubtest()
    assert not problems, "\n".join(problems)


def test_the_user_program_runs():
    result = subprocess.run([sys.executable, os.path.join(TYPING, "user_program.py")],
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "user_program: ok" in result.stdout


GENERIC = ["Queue", "LifoQueue", "PriorityQueue", "SimpleQueue", "ReorderBuffer", "ProcessQueue",
           "ClosableQueue", "IterableQueue", "ParallelSingleTaskQueue", "StoppableWorker"]
# Not subscriptable yet (by where they are defined); each is asserted like the others once it is.
PENDING: dict[str, str] = {}


@pytest.mark.parametrize("name", GENERIC)
@pytest.mark.parametrize("namespace", ["fastq", "fastq.pure"])
def test_generic_classes_subscript_at_run_time(namespace, name):
    cls = getattr(importlib.import_module(namespace), name)
    args = (int, str) if name == "StoppableWorker" else (int,)
    try:
        alias = cls[args if len(args) > 1 else args[0]]
    except TypeError:
        where = f"{cls.__module__}.{cls.__qualname__}"
        if where in PENDING:
            pytest.xfail(PENDING[where])
        raise
    assert alias.__origin__ is cls and alias.__args__ == args
    # the core classes give what the C ones and the queue module's give
    if name in ("Queue", "LifoQueue", "PriorityQueue", "SimpleQueue", "ReorderBuffer"):
        assert isinstance(alias, types.GenericAlias)


def test_typing_is_not_imported_by_import_fastq():
    def typing_loaded(code):
        result = subprocess.run([sys.executable, "-c", f"import sys; {code}; print('typing' in sys.modules)"],
                                capture_output=True, text=True, check=True)
        return result.stdout.strip() == "True"

    if typing_loaded("pass"):
        pytest.skip("this interpreter's startup imports typing already")
    assert not typing_loaded("import fastq"), "import fastq imports typing (fastq/_typing.py says why it should not)"
    assert fastq.IMPLEMENTATION in ("c", "python")
