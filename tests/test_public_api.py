"""The public names, on both cores: each class and function is defined once at module level (its
bare name as __qualname__, reachable from its module), pickles by reference, and keeps the
subclass relations users rely on. `import fastq` loads only the cores."""
import pickle
import subprocess
import sys

import pytest

import fastq

# name -> the module that defines it over fastq's default cores (fastq.pure.<same> over the pure ones)
WRAPPERS = {
    "ClosableQueue": "closable", "StoppableWorker": "closable", "multiplex": "pipeline", "merge": "pipeline",
    "IterableQueue": "iterable", "ParallelQueue": "parallel", "ParallelSingleTaskQueue": "parallel",
}
SHARED = {"StoppableWorker"}  # uses no core: one class for both namespaces
CORES = ["Queue", "LifoQueue", "PriorityQueue", "SimpleQueue", "ReorderBuffer", "ProcessQueue"]


def _public(obj):
    return getattr(sys.modules[obj.__module__], obj.__qualname__) is obj


@pytest.mark.parametrize("name", sorted(WRAPPERS) + CORES)
def test_defined_once_at_module_level_and_pickled_by_reference(impl, name):
    obj = getattr(impl.api, name)
    assert obj.__qualname__ == name
    assert "<locals>" not in obj.__qualname__ and _public(obj)
    assert pickle.loads(pickle.dumps(obj)) is obj
    if name in WRAPPERS:
        module = f"fastq.{WRAPPERS[name]}" if name in SHARED or not impl.is_pure_python else f"fastq.pure.{WRAPPERS[name]}"
        assert obj.__module__ == module
        assert getattr(sys.modules[module], name) is obj


@pytest.mark.parametrize("name", ["Producer", "Consumer"])
def test_iterable_endpoints(impl, name):
    cls = getattr(impl.api.IterableQueue, name)
    assert cls.__qualname__ == name and cls.__module__ == "fastq.iterable"
    assert pickle.loads(pickle.dumps(cls)) is cls


@pytest.mark.parametrize("name", ["scatter", "map", "gather"])
def test_dask_functions(impl, name):
    func = getattr(impl.api.dask, name)
    assert func.__qualname__ == name and func.__module__ == impl.api.dask.__name__
    assert pickle.loads(pickle.dumps(func)) is func


def test_subclass_relations(impl):
    api = impl.api
    assert issubclass(api.ClosableQueue, api.Queue)
    assert issubclass(api.ParallelSingleTaskQueue, api.ParallelQueue)
    assert api.ClosableQueue.__doc__ and api.ParallelQueue.__doc__ and api.IterableQueue.__doc__


def test_the_twins_are_the_same_code_over_their_own_cores():
    assert fastq.pure.ClosableQueue is not fastq.ClosableQueue
    assert fastq.pure.ClosableQueue.close is fastq.ClosableQueue.close
    assert fastq.pure.ParallelQueue.map is fastq.ParallelQueue.map
    assert fastq.pure.ParallelQueue._ReorderBuffer is fastq.pure.ReorderBuffer
    assert fastq.pure.IterableQueue._ProcessQueue is fastq.pure.ProcessQueue


@pytest.mark.parametrize("namespace", ["fastq", "fastq.pure"])
def test_dir_and_all_list_everything(namespace):
    module = sys.modules[namespace]
    for name in module.__all__:
        assert name in dir(module)
        assert getattr(module, name) is not None
    star = {}
    exec(f"from {namespace} import *", star)
    assert set(module.__all__) <= set(star)


def test_import_fastq_loads_only_the_cores():
    code = ("import sys, fastq; print(' '.join(sorted(m for m in sys.modules "
            "if m.startswith(('fastq', 'multiprocessing', 'concurrent')))))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())
    assert not {m for m in loaded if m.startswith(("multiprocessing", "concurrent"))}
    for wrapper in ("closable", "pipeline", "iterable", "parallel", "dask", "bench", "pure._process", "pure.parallel"):
        assert f"fastq.{wrapper}" not in loaded
