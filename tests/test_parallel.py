"""ParallelQueue and ParallelSingleTaskQueue on both cores and every backend.

The classes are bound here to the core under test (ReorderBuffer, Queue and ProcessQueue of that
core; the C core's ProcessQueue falls back to the pure one where it is not built). Backends:
"process", "thread", a ThreadPoolExecutor, a ProcessPoolExecutor (fork) and a dask Client on a
real distributed.LocalCluster (skipped when distributed is not installed).
"""
import concurrent.futures
import gc
import multiprocessing
import os
import pickle
import random
import signal
import sys
import textwrap
import threading
import time

import pytest

import fastq
from fastq import parallel
from fastq.errors import Closed, Empty, Full, ShutDown, WorkerDied, WorkerError
from subproc import run_python

FORK = multiprocessing.get_context("fork")
pytestmark = pytest.mark.timeout(60)


# ---------------------------------------------------------------------------------------------
# tasks (module level, so they pickle by reference for processes, executors and dask)


def square(x):
    return x * x


def echo_after(x, delay):
    time.sleep(delay)
    return x


def add(a, b=0, *, c=0):
    return a + b + c


def boom(x):
    return x / 0


def pid_of(_=None):
    return os.getpid()


def kill_self(delay=0.0):
    time.sleep(delay)
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(10)


def exit_self(delay=0.0):
    time.sleep(delay)
    os._exit(3)


def give_lambda():
    return lambda: None


class Unpicklable(Exception):
    def __reduce__(self):
        raise TypeError("not today")


def _refuse(*args):
    raise TypeError("refuses to unpickle")


class RefusesToLoad:
    """Pickles in the worker, but its unpickling raises (in the parent, where results are loaded)."""

    def __reduce__(self):
        return _refuse, ("a result",)


def give_refuses_to_load():
    return RefusesToLoad()


def give_refuses_to_load_in_a_list(n):
    return [n, RefusesToLoad()]


class NeedsTwoArgs(Exception):
    def __init__(self, a, b):
        super().__init__(f"{a}-{b}")

    def __reduce__(self):  # pickles, but does not unpickle
        return _refuse, self.args


def raise_unpicklable():
    raise Unpicklable("custom")


def raise_needs_two():
    raise NeedsTwoArgs(1, 2)


# ---------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture
def api(impl):
    return impl.api.ParallelQueue, impl.api.ParallelSingleTaskQueue


@pytest.fixture(scope="module")
def thread_executor():
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        yield ex


@pytest.fixture(scope="module")
def process_executor():
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=FORK) as ex:
        yield ex


def _dask_cluster(processes):
    distributed = pytest.importorskip("distributed")
    import logging

    logging.getLogger("distributed").setLevel(logging.ERROR)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=processes,
                                       dashboard_address=":0")
    client = distributed.Client(cluster)
    return cluster, client


@pytest.fixture(scope="module")
def dask_client():
    cluster, client = _dask_cluster(processes=False)
    yield client
    client.close()
    cluster.close()


BACKENDS = ["process", "thread", "thread-executor", "process-executor", "dask"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    name = request.param
    if name in ("process", "thread"):
        return name
    return request.getfixturevalue({"thread-executor": "thread_executor", "process-executor": "process_executor",
                                    "dask": "dask_client"}[name])


@pytest.fixture
def make(api):
    """make(**kw) -> a ParallelQueue (or make(func, single=True, ...) a ParallelSingleTaskQueue)
    with two workers, stopped and joined after the test."""
    ParallelQueue, ParallelSingleTaskQueue = api
    made = []

    def factory(func=None, *, single=False, **kw):
        kw.setdefault("worker_count", 2)
        pq = ParallelSingleTaskQueue(func, **kw) if single else ParallelQueue(**kw)
        made.append(pq)
        return pq

    yield factory
    for pq in made:
        pq.stop()
        pq.join(10)
        assert not pq.is_alive()


def feed(pq, tasks):
    """put() every (func, *args) of `tasks` from a thread (put blocks while the window is full)."""

    def run():
        for task in tasks:
            pq.put(*task)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def alive(pid):
    """Whether pid is a live process (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):  # gone, or going while we read
        return False
    return state not in ("Z", "X")


def wait_gone(pids, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.02)
    return False


# ---------------------------------------------------------------------------------------------
# order, passthrough, wrap-around


def test_public_names_are_bound_to_their_core():
    for ns in (fastq, fastq.pure):
        assert (ns.ParallelQueue._ReorderBuffer, ns.ParallelQueue._Queue, ns.ParallelQueue._ProcessQueue) == (
            ns.ReorderBuffer, ns.Queue, ns.ProcessQueue)
    assert fastq.ParallelQueue is parallel.ParallelQueue
    assert issubclass(fastq.ParallelSingleTaskQueue, fastq.ParallelQueue)
    assert issubclass(fastq.pure.ParallelSingleTaskQueue, fastq.pure.ParallelQueue)


def test_random_durations_come_out_in_order(make, backend):
    pq = make(backend=backend)
    rng = random.Random(5)
    n = 40
    feed(pq, [(echo_after, i, rng.random() * 0.005) for i in range(n)])
    assert [pq.get(timeout=20) for _ in range(n)] == list(range(n))


def test_arguments_and_keywords(make, backend):
    pq = make(backend=backend)
    pq.put(add, 1)
    pq.put(add, 1, 2)
    pq.put(add, 1, b=2, c=3)
    pq.put(square, 7, timeout=5)  # block/timeout are put's own
    assert [pq.get(timeout=20) for _ in range(4)] == [1, 3, 6, 49]


def test_passthrough_markers_in_order(make, backend):
    pq = make(backend=backend)
    expected = []
    tasks = []
    for batch in range(4):
        for i in range(5):
            tasks.append((echo_after, (batch, i), random.random() * 0.003))
            expected.append((batch, i))
        tasks.append((f"batch {batch} done",))
        expected.append(f"batch {batch} done")
    feed(pq, tasks)
    assert [pq.get(timeout=20) for _ in expected] == expected


def test_non_callable_with_arguments_raises_value_error(make):
    pq = make(backend="thread")
    with pytest.raises(ValueError):
        pq.put("marker", 1)
    with pytest.raises(ValueError):
        pq.put(42, key="value")
    assert pq.qsize() == 0  # took no id
    pq.put(None)  # None alone passes through too
    assert pq.get(timeout=5) is None


def test_ids_starting_just_below_2_32_wrap(make, backend):
    start = 2**32 - 5
    pq = make(backend=backend, buffer_size=8, _start=start)
    n = 30
    feed(pq, [(echo_after, i, random.random() * 0.002) if i % 7 else (f"mark {i}",) for i in range(n)])
    got = [pq.get(timeout=20) for _ in range(n)]
    assert got == [i if i % 7 else f"mark {i}" for i in range(n)]
    assert pq._buffer.next_out == (start + n) % 2**32


# ---------------------------------------------------------------------------------------------
# errors


def test_exception_surfaces_with_traceback_and_later_results_arrive(make, backend):
    pq = make(backend=backend)
    pq.put(square, 2)
    pq.put(boom, 1)
    pq.put(square, 3)
    assert pq.get(timeout=20) == 4
    with pytest.raises(WorkerError) as info:
        pq.get(timeout=20)
    err = info.value
    assert "ZeroDivisionError" in str(err)
    assert "boom" in err.traceback and "x / 0" in err.traceback
    assert isinstance(err.__cause__, ZeroDivisionError)
    assert pq.get(timeout=20) == 9


def test_exception_that_does_not_travel_still_tells(make):
    pq = make(backend="process")
    pq.put(raise_unpicklable)
    pq.put(raise_needs_two)
    pq.put(square, 5)
    with pytest.raises(WorkerError) as info:
        pq.get(timeout=20)
    assert "Unpicklable" in str(info.value) and "raise_unpicklable" in info.value.traceback
    assert info.value.__cause__ is None
    with pytest.raises(WorkerError) as info:
        pq.get(timeout=20)
    assert "NeedsTwoArgs: 1-2" in str(info.value) and info.value.__cause__ is None
    assert pq.get(timeout=20) == 25


def test_unpicklable_task_raises_in_put_and_takes_no_id(make):
    pq = make(backend="process")
    with pytest.raises(TypeError):
        pq.put(square, threading.Lock())
    with pytest.raises(TypeError):
        pq.put(square, x=threading.Lock())
    assert pq.qsize() == 0
    pq.put(square, 6)
    assert pq.get(timeout=20) == 36


START_METHODS = ["fork", "spawn", "forkserver"]


@pytest.mark.parametrize("method", START_METHODS)
def test_lambdas_and_closures_run_under_every_start_method(make, method):
    ctx = multiprocessing.get_context(method)
    offset = 100

    def closure(x):
        return x + offset

    pq = make(backend="process", ctx=ctx)
    assert pq._backend.ctx is ctx
    pq.put(lambda x: x * 3, 5)
    pq.put(closure, 1)
    assert [pq.get(timeout=60), pq.get(timeout=60)] == [15, 101]
    assert list(pq.map(lambda x: -x, range(50))) == [-i for i in range(50)]
    assert list(pq.map(closure, range(5), chunksize=1)) == [i + offset for i in range(5)]
    single = make(lambda x, k=1: (x + offset) * k, single=True, backend="process", ctx=ctx)
    single.put(1, k=2)
    assert single.get(timeout=60) == 202
    assert list(single.map(list(range(300)))) == [i + offset for i in range(300)]


_MAIN_SCRIPT = textwrap.dedent("""
    # run with -c: __main__ has no file, so workers not forked from it cannot import what it defines
    import multiprocessing, sys
    import fastq, fastq.pure
    ns = fastq.pure if sys.argv[1] == "python" else fastq

    def triple(x):
        return 3 * x

    ctx = multiprocessing.get_context(sys.argv[2])
    with ns.ParallelQueue(2, ctx=ctx) as pq:
        pq.put(triple, 2)
        print(pq.get(timeout=60), list(pq.map(triple, range(4))))
    with ns.ParallelSingleTaskQueue(triple, 1, ctx=ctx) as pq:
        pq.put(5)
        print(pq.get(timeout=60))
""")


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_function_of_an_interactive_main_runs_in_workers(impl, method):
    proc = run_python("-c", _MAIN_SCRIPT, impl.name, method)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["6 [0, 3, 6, 9]", "15"]


def test_without_cloudpickle_the_error_names_the_extra(make, monkeypatch):
    monkeypatch.setitem(sys.modules, "cloudpickle", None)  # import cloudpickle raises ImportError
    offset = 1

    def closure(x):
        return x + offset

    pq = make(backend="process")
    with pytest.raises(TypeError, match=r"fastq-queue\[cloudpickle\]"):
        pq.put(lambda: 1)
    assert pq.qsize() == 0
    with pytest.raises(TypeError, match=r"fastq-queue\[cloudpickle\]"):
        make(closure, single=True, ctx=multiprocessing.get_context("spawn"))
    # where the start method is not chosen, a single-task closure still reaches forked workers
    single = make(closure, single=True)
    assert single._backend.ctx.get_start_method() == "fork"
    single.put(2)
    assert single.get(timeout=20) == 3
    pq.put(square, 4)  # module-level functions need no cloudpickle
    assert pq.get(timeout=20) == 16


def test_ctx_is_checked(make):
    with pytest.raises(TypeError, match="multiprocessing context"):
        make(backend="process", ctx="spawn")
    with pytest.raises(ValueError, match="process backend"):
        make(backend="thread", ctx=multiprocessing.get_context("spawn"))


_NO_FORK_WARNING_SCRIPT = textwrap.dedent("""
    import os, signal, sys, threading, time
    import fastq, fastq.pure
    ns = fastq.pure if sys.argv[1] == "python" else fastq
    if sys.argv[2] == "threaded":  # threads before the first queue
        threading.Thread(target=time.sleep, args=(3,), daemon=True).start()
    k = 3

    def closure(x):
        return x * k

    closure.__qualname__ = "nowhere.closure"  # it cannot travel: forked workers inherit it
    # (made first, while the process has no thread: the forker it forks inherits the closure)
    with ns.ParallelSingleTaskQueue(closure, 2) as c, ns.ParallelQueue(2) as a, ns.ParallelQueue(2) as b:
        assert list(a.map(abs, range(-5, 5))) == list(b.map(abs, range(-5, 5)))
        assert list(c.map(range(4))) == [0, 3, 6, 9]
        for q, task in ((a, (time.sleep, 0.5)), (c, (1,))):
            os.kill(q._backend.pids()[0], signal.SIGKILL)  # a replacement starts
            q.put(*task)
            try:
                q.get(timeout=60)
            except fastq.WorkerDied:
                pass
            deadline = time.monotonic() + 60
            while len(q._backend.pids()) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        print(a._backend.ctx.get_start_method(), len(a._backend.pids()), len(c._backend.pids()))
    with ns.ParallelQueue(2) as d:  # closed and made again, in a process with threads now
        assert list(d.map(abs, range(-5, 5))) == list(range(5, 0, -1)) + list(range(5))
""")


@pytest.mark.parametrize("threads", ["plain", "threaded"])
def test_no_fork_deprecation_warning_from_fastqs_workers(impl, threads):
    # Python 3.12+ warns when a multi-threaded process forks: workers come from a single-threaded
    # process (the forker, forked before the queue's own thread, or the forkserver)
    expected = multiprocessing.get_context().get_start_method()
    users_threads_warn = False  # a threaded program's own threads, at the forker's fork
    if threads == "threaded" and expected == "fork" and sys.version_info >= (3, 12):
        if _has_cloudpickle():
            expected = "forkserver"  # the warning would show: forkserver, where functions travel
        else:
            users_threads_warn = True
    for flag in ("always::DeprecationWarning", "error::DeprecationWarning"):
        proc = run_python("-W", flag, "-c", _NO_FORK_WARNING_SCRIPT, impl.name, threads)
        assert proc.returncode == 0, proc.stderr
        if not users_threads_warn:
            assert "fork()" not in proc.stderr, proc.stderr
        assert proc.stdout.split() == [expected, "2", "2"]


def _has_cloudpickle():
    try:
        import cloudpickle  # noqa: F401
    except ImportError:
        return False
    return True


_NO_GUARD_SCRIPT = textwrap.dedent("""
    # no `if __name__ == "__main__":` guard: workers that re-imported this file would run it again
    import sys, threading, time
    sys.modules["cloudpickle"] = None  # functions of __main__ go by reference: workers must have them
    import fastq, fastq.pure
    ns = fastq.pure if sys.argv[1] == "python" else fastq
    if sys.argv[2] == "threaded":
        threading.Thread(target=time.sleep, args=(3,), daemon=True).start()

    def square(x):
        return x * x

    k = 3

    def times_k(x):
        return x * k

    pq = ns.ParallelQueue(2)
    for i in range(100):
        pq.put(square, i)
    print(pq._backend.ctx.get_start_method(), sum(pq.get(timeout=60) for _ in range(100)))
    pq.stop()
    pq.join(60)
    with ns.ParallelSingleTaskQueue(times_k, 2) as st:
        print(list(st.map(range(4))))

    def defined_later(x):
        return -x

    if sys.argv[2] == "plain":  # made while no other thread runs: its workers have what came before
        with ns.ParallelQueue(2) as pq:
            print(list(pq.map(defined_later, range(3))))
""")


@pytest.mark.skipif(multiprocessing.get_context().get_start_method() != "fork",
                    reason="the platform's default start method is not fork")
@pytest.mark.parametrize("threads", ["plain", "threaded"])
def test_a_script_without_a_main_guard_runs_with_the_default_start_method(impl, tmp_path, threads):
    script = tmp_path / "script.py"
    script.write_text(_NO_GUARD_SCRIPT)
    proc = run_python(str(script), impl.name, threads, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    expected = [f"fork {sum(i * i for i in range(100))}", "[0, 3, 6, 9]"]
    assert proc.stdout.splitlines() == expected + (["[0, -1, -2]"] if threads == "plain" else [])


def test_a_killed_forker_costs_the_tasks_its_workers_ran_and_the_stream_goes_on(make, caplog):
    pq = make(ctx=FORK)
    forker = pq._backend.forker
    assert forker is not None
    pq.put(echo_after, 1, 30.0)
    time.sleep(0.5)  # running
    os.kill(forker.pid, signal.SIGKILL)  # its workers die with it (their death signal)
    with pytest.raises(WorkerDied, match="SIGKILL"):
        pq.get(timeout=30)
    assert list(pq.map(square, range(20))) == [i * i for i in range(20)]  # forked by the collector now
    assert any("forker" in r.getMessage() for r in caplog.records)
    assert not alive(forker.pid)
    again = make(ctx=FORK)  # a new queue gets a new forker
    assert again._backend.forker.pid != forker.pid
    assert list(again.map(square, range(5))) == [i * i for i in range(5)]


_FORKED_PARENT_SCRIPT = textwrap.dedent("""
    import os, sys
    import fastq, fastq.pure
    ns = fastq.pure if sys.argv[1] == "python" else fastq
    pq = ns.ParallelQueue(2)
    assert list(pq.map(abs, range(-3, 0))) == [3, 2, 1]
    pids = pq._backend.pids()
    child = os.fork()  # the copy exits through its atexit hooks: the queue's workers are not its
    if child == 0:
        sys.exit(0)
    assert os.waitpid(child, 0)[1] == 0
    assert list(pq.map(abs, range(-3, 0))) == [3, 2, 1] and pq._backend.pids() == pids
    pq.stop()
    pq.join(60)
    print("ok")
""")


def test_a_fork_of_the_queues_process_leaves_its_workers_alone(impl):
    proc = run_python("-c", _FORKED_PARENT_SCRIPT, impl.name)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ok"]


def test_unpicklable_result_raises_at_its_get(make):
    pq = make(backend="process")
    pq.put(give_lambda)
    pq.put(square, 4)
    with pytest.raises(WorkerError):
        pq.get(timeout=20)
    assert pq.get(timeout=20) == 16


def test_a_result_that_fails_to_unpickle_raises_at_its_own_get_and_the_stream_goes_on(make):
    pq = make(backend="process")
    pq.put(square, 2)
    pq.put(give_refuses_to_load)
    for k in range(3, 8):
        pq.put(square, k)
    assert pq.get(timeout=20) == 4
    with pytest.raises(WorkerError, match="result of task 1 could not be unpickled") as info:
        pq.get(timeout=20)
    assert isinstance(info.value.__cause__, TypeError) and "refuses to unpickle" in info.value.traceback
    assert [pq.get(timeout=20) for _ in range(5)] == [k * k for k in range(3, 8)]
    pq.put(square, 9)  # the collector lives: later puts work
    assert pq.get(timeout=20) == 81


def test_a_group_whose_results_fail_to_unpickle_fails_at_its_place_in_map(make):
    pq = make(backend="process")
    got = []
    with pytest.raises(WorkerError, match="could not be unpickled"):
        for result in pq.map(give_refuses_to_load_in_a_list, [1, 2, 3], chunksize=1):
            got.append(result)
    assert got == []
    assert list(pq.map(square, range(50))) == [k * k for k in range(50)]


def test_failed_send_fills_its_id(make):
    pq = make(backend="thread")

    class Boom(Exception):
        pass

    real_put = pq._backend.tasks.put
    calls = []

    def flaky_put(item):
        calls.append(item)
        if len(calls) == 2:
            raise Boom("transport failed")
        real_put(item)

    pq._backend.tasks.put = flaky_put
    pq.put(square, 1)
    with pytest.raises(Boom):
        pq.put(square, 2)
    pq.put(square, 3)
    assert pq.get(timeout=5) == 1
    with pytest.raises(WorkerError, match="could not be sent") as info:
        pq.get(timeout=5)
    assert isinstance(info.value.__cause__, Boom)
    assert pq.get(timeout=5) == 9


def test_collector_failure_reaches_get_not_silence(make):
    pq = make(backend="process")
    pq.put(echo_after, 1, 0.3)
    time.sleep(0.05)
    pq._backend.results.put("not a result")  # the collector cannot unpack this
    with pytest.raises(WorkerError, match="collector"):
        pq.get(timeout=20)
    with pytest.raises(WorkerError, match="collector"):
        pq.put(square, 2)
    with pytest.raises(WorkerError, match="collector"):
        pq.get(timeout=5)


# ---------------------------------------------------------------------------------------------
# dying workers


@pytest.mark.parametrize("how", [kill_self, exit_self], ids=["sigkill", "os_exit"])
def test_dead_worker_surfaces_as_worker_died_and_the_stream_goes_on(make, impl, how):
    # The pure ProcessQueue (multiprocessing's) is not crash tolerant: a worker killed while its
    # feeder thread writes an earlier result can leave the shared write lock held. The pure core
    # dies a moment later, so what is tested there is ParallelQueue's handling, not the queue's.
    delay = 0.05 if impl.is_pure_python else 0.0
    pq = make(backend="process")
    before = set(pq._backend.pids())
    pq.put(square, 1)
    pq.put(how, delay)
    tail = list(range(2, 12))
    for i in tail:
        pq.put(echo_after, i, 0.01)
    assert pq.get(timeout=20) == 1
    with pytest.raises(WorkerDied) as info:
        pq.get(timeout=20)
    assert "died" in str(info.value)
    for i in tail:  # the dead worker may have held a few of these too
        try:
            assert pq.get(timeout=20) == i
        except WorkerDied:
            pass
    feed(pq, [(square, i) for i in range(20)])
    assert [pq.get(timeout=20) for _ in range(20)] == [i * i for i in range(20)]
    after = set(pq._backend.pids())
    assert len(after) == 2 and after != before  # a replacement started


def append_line(path, x, delay=0.0):
    """A task with a side effect that tells how often it ran."""
    time.sleep(delay)
    with open(path, "a") as f:
        f.write(f"{x}\n")
    return x


def append_then_kill(path, x, delay):
    append_line(path, x)
    kill_self(delay)


def test_a_killed_worker_costs_only_the_task_it_ran(make, tmp_path, caplog):
    # One worker, its credit grown by short tasks, so that many tasks wait in its own queue
    # (taken out of it in one batch) behind the one it runs when SIGKILL comes.
    caplog.set_level("INFO", logger="fastq")
    log = tmp_path / "ran.txt"
    pq = make(backend="process", worker_count=1, buffer_size=64)
    assert list(pq.map(square, range(300), chunksize=1)) == [i * i for i in range(300)]
    for i in range(5):
        pq.put(append_line, log, i)
    pq.put(append_then_kill, log, "killer", 0.5)  # the results before it are sent by then
    behind = list(range(5, 25))
    for i in behind:
        pq.put(append_line, log, i)
    [worker] = pq._backend.workers.values()
    assert len(worker.held) > 2  # the premise: tasks queued to the worker behind the running one
    assert [pq.get(timeout=20) for _ in range(5)] == list(range(5))
    with pytest.raises(WorkerDied, match="SIGKILL"):
        pq.get(timeout=20)
    assert [pq.get(timeout=20) for _ in behind] == behind  # re-run on the replacement
    ran = log.read_text().split()
    assert sorted(ran, key=str) == sorted([str(i) for i in range(25)] + ["killer"], key=str)  # each once
    # the fastq logger tells of the death and the replacement
    messages = [r.getMessage() for r in caplog.records if r.name == "fastq"]
    assert any("died (killed by SIGKILL) while it ran task" in m and "queued behind it go to other workers" in m
               for m in messages), messages
    assert any("to replace a dead one" in m for m in messages), messages


def test_a_worker_killed_between_tasks_costs_none(make, impl, tmp_path):
    # SIGKILL from outside while the worker is idle, then tasks sent to it before the parent
    # noticed: it began none of them, so all run elsewhere and none fails
    log = tmp_path / "ran.txt"
    pq = make(backend="process", worker_count=1)
    pq.put(pid_of)
    pid = pq.get(timeout=20)
    if impl.is_pure_python:  # multiprocessing's feeder thread may still hold the result queue's lock
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    assert wait_gone([pid])
    for i in range(5):
        pq.put(append_line, log, i)
    assert [pq.get(timeout=20) for _ in range(5)] == list(range(5))
    assert sorted(log.read_text().split()) == [str(i) for i in range(5)]
    assert pid not in pq._backend.pids()


def test_the_fastq_logger_has_a_null_handler():
    import logging

    from fastq._log import logger

    assert logger is logging.getLogger("fastq")
    assert any(isinstance(h, logging.NullHandler) for h in logger.handlers)


def test_several_deaths_in_a_row(make, impl):
    delay = 0.05 if impl.is_pure_python else 0.0
    pq = make(backend="process", worker_count=2)
    for _ in range(3):
        pq.put(kill_self, delay)
    for _ in range(3):
        with pytest.raises(WorkerDied):
            pq.get(timeout=20)
    pq.put(square, 9)
    assert pq.get(timeout=20) == 81
    assert len(pq._backend.pids()) == 2


def test_broken_process_pool_executor_surfaces_as_worker_died(make):
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=FORK) as ex:
        pq = make(backend=ex)
        pq.put(kill_self)
        with pytest.raises(WorkerDied):
            pq.get(timeout=20)


# ---------------------------------------------------------------------------------------------
# back-pressure


@pytest.mark.parametrize("backend_name", ["process", "thread"])
def test_back_pressure_with_a_slow_consumer(make, backend_name):
    window = 4
    started = FORK.Value("i", -1, lock=False)  # highest task index started, seen by forked workers

    def task(i):
        if i > started.value:
            started.value = i
        return i

    pq = make(task, single=True, backend=backend_name, buffer_size=window)
    n = 30
    feeder = feed(pq, [(i,) for i in range(n)])
    for i in range(n):
        assert pq.get(timeout=20) == i
        time.sleep(0.01)
        assert pq._buffer.pending <= window
        assert started.value < i + 1 + window  # never more than the window ahead of the consumer
    feeder.join(5)


def test_put_never_waits_for_a_consumer_beyond_the_window(make, backend):
    # the first program most people write: put everything, then get everything
    window = 4
    pq = make(backend=backend, buffer_size=window)
    n = 10 * window
    for i in range(n):
        pq.put(square, i, timeout=0)  # never waits: a timeout of 0 would raise Full if it did
        if i % 9 == 0:
            pq.put(f"mark {i}")
    assert pq.qsize() == n + len(range(0, n, 9))
    assert pq._buffer.pending <= window  # the rest wait in line in the parent
    expected = []
    for i in range(n):
        expected.append(i * i)
        if i % 9 == 0:
            expected.append(f"mark {i}")
    assert [pq.get(timeout=20) for _ in expected] == expected
    assert pq.qsize() == 0


def test_stop_with_tasks_beyond_the_window_runs_them_all(make, backend):
    pq = make(backend=backend, buffer_size=2)
    for i in range(20):
        pq.put(square, i)
    pq.put("end")
    pq.stop()
    with pytest.raises(Closed):
        pq.put(square, 1)
    assert list(pq) == [i * i for i in range(20)] + ["end"]
    pq.join(20)
    assert not pq.is_alive()
    with pytest.raises(Closed):
        pq.get(timeout=5)


def test_an_exception_leaving_the_block_does_not_wait_for_the_backlog(api, tmp_path):
    ParallelQueue = api[0]
    log = tmp_path / "ran.txt"
    with pytest.raises(KeyError):
        with ParallelQueue(2, buffer_size=2) as pq:
            for i in range(50):
                pq.put(append_line, log, i)
            raise KeyError("the consumer failed")
    assert pq.stopped and not pq.is_alive()
    ran = log.read_text().split()
    assert len(ran) == len(set(ran)) <= 2  # the window's tasks ran; those beyond it never started


def test_maxsize_bounds_the_tasks_pending(make, backend):
    pq = make(backend=backend, buffer_size=2, maxsize=3)
    assert pq.maxsize == 3
    pq.put(square, 1)
    pq.put("marker")
    pq.put(square, 2)  # beyond the window: waits in line, counts against maxsize
    t0 = time.monotonic()
    with pytest.raises(Full):
        pq.put(square, 3, timeout=0.1)
    assert time.monotonic() - t0 >= 0.09
    with pytest.raises(Full):
        pq.put(square, 3, block=False)
    with pytest.raises(Full):
        pq.put("another", block=False)
    assert pq.qsize() == 3
    assert pq.get(timeout=20) == 1
    pq.put(square, 3, block=False)
    assert [pq.get(timeout=20) for _ in range(3)] == ["marker", 4, 9]


def test_a_put_waiting_for_maxsize_goes_on_after_a_get(make):
    pq = make(backend="thread", maxsize=1)
    pq.put("first")
    done = threading.Event()

    def second():
        pq.put("second", timeout=20)
        done.set()

    t = threading.Thread(target=second)
    t.start()
    assert not done.wait(0.1)
    assert pq.get(timeout=5) == "first"
    assert done.wait(20)
    t.join(5)
    assert pq.get(timeout=5) == "second"


def test_maxsize_and_timeout_arguments_are_checked(make):
    with pytest.raises(ValueError, match="maxsize"):
        make(backend="thread", maxsize=-1)
    with pytest.raises(TypeError):
        make(backend="thread", maxsize="2")
    with pytest.raises(TypeError):
        make(backend="thread", maxsize=2.5)
    pq = make(backend="thread")
    with pytest.raises(ValueError, match="non-negative"):
        pq.put(square, 1, timeout=-1)
    assert pq.qsize() == 0


def test_buffer_size_default_and_rounding(make):
    cpus = parallel._cpu_count()
    assert parallel.default_buffer_size(2) == 32
    assert parallel.default_buffer_size(16) == 256
    assert make(backend="thread").buffer_size == parallel.default_buffer_size(cpus)
    assert make(backend="thread", buffer_size=5).buffer_size == 8
    with pytest.raises(ValueError):
        make(backend="thread", buffer_size=0)
    with pytest.raises(ValueError):
        make(backend="thread", worker_count=0)
    with pytest.raises(ValueError):
        make(backend="carrier pigeon")


def _cgroup_tree(tmp_path, proc_lines, files):
    """A fake /proc/self/cgroup and /sys/fs/cgroup: {relative path: text}."""
    tmp_path.mkdir()
    proc = tmp_path / "cgroup"
    proc.write_text("".join(line + "\n" for line in proc_lines))
    root = tmp_path / "sys-fs-cgroup"
    root.mkdir()
    for rel, text in files.items():
        f = root / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    return str(proc), str(root)


def test_worker_count_respects_the_cgroup_cpu_quota(tmp_path):
    from fastq import _cpus

    affinity = len(os.sched_getaffinity(0))
    # cgroup v2: the tightest quota on the way up counts; "max" is no limit
    proc, root = _cgroup_tree(tmp_path / "v2", ["0::/app/job"], {
        "app/job/cpu.max": "max 100000\n", "app/cpu.max": "150000 100000\n", "cpu.max": "400000 100000\n"})
    assert _cpus.cgroup_cpu_quota(proc, root) == 1.5
    assert _cpus.cpu_count(proc, root) == min(affinity, 2)  # rounded up
    # a container sees its own cgroup as the root, whatever path /proc names
    proc, root = _cgroup_tree(tmp_path / "ns", ["0::/host/path/of/it"], {"cpu.max": "100000 100000"})
    assert _cpus.cpu_count(proc, root) == 1
    # cgroup v1
    proc, root = _cgroup_tree(tmp_path / "v1", ["4:memory:/x", "2:cpu,cpuacct:/docker/abc"], {
        "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "50000", "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000",
        "cpu,cpuacct/cpu.cfs_quota_us": "-1", "cpu,cpuacct/cpu.cfs_period_us": "100000"})
    assert _cpus.cgroup_cpu_quota(proc, root) == 0.5
    assert _cpus.cpu_count(proc, root) == 1
    # no quota, no cgroup file, nonsense: the affinity
    proc, root = _cgroup_tree(tmp_path / "none", ["0::/"], {"cpu.max": "max 100000"})
    assert _cpus.cgroup_cpu_quota(proc, root) is None and _cpus.cpu_count(proc, root) == affinity
    assert _cpus.cpu_count(str(tmp_path / "missing"), str(tmp_path / "missing-too")) == affinity
    proc, root = _cgroup_tree(tmp_path / "bad", ["garbage", "0::/"], {"cpu.max": "lots of it"})
    assert _cpus.cpu_count(proc, root) == affinity


def test_the_default_worker_count_is_the_cpus_this_process_may_use(make):
    from fastq import _cpus

    assert make(backend="thread", worker_count=None).worker_count == _cpus.cpu_count()


# ---------------------------------------------------------------------------------------------
# lifetime: stop, join, is_alive, iteration, map, context manager


def test_stop_join_is_alive(make, backend):
    pq = make(backend=backend)
    assert pq.is_alive()
    with pytest.raises(ValueError):  # could never return
        pq.join()
    for i in range(5):
        pq.put(echo_after, i, 0.01)
    pq.put("end")
    pq.stop()
    assert pq.stopped
    with pytest.raises(Closed):
        pq.put(square, 1)
    with pytest.raises(Closed):
        pq.put("marker")
    pq.join(20)
    assert not pq.is_alive()
    assert [pq.get(timeout=5) for _ in range(6)] == [0, 1, 2, 3, 4, "end"]  # results outlive the workers
    with pytest.raises(Closed):
        pq.get(timeout=5)
    with pytest.raises(ShutDown):  # Closed is a ShutDown
        pq.get(block=False)
    pq.stop()  # idempotent


def test_get_timeout_and_nonblocking(make):
    pq = make(backend="thread")
    with pytest.raises(Empty):
        pq.get(block=False)
    t0 = time.monotonic()
    with pytest.raises(Empty):
        pq.get(timeout=0.05)
    assert time.monotonic() - t0 >= 0.04


def test_stop_wakes_a_put_waiting_for_maxsize(make):
    pq = make(backend="thread", maxsize=1)
    pq.put("first")
    errors = []

    def blocked():
        try:
            pq.put("second")
        except Closed as exc:
            errors.append(exc)

    t = threading.Thread(target=blocked)
    t.start()
    time.sleep(0.05)
    pq.stop()
    t.join(5)
    assert len(errors) == 1
    assert pq.get(timeout=5) == "first"
    with pytest.raises(Closed):
        pq.get(timeout=5)


def test_join_with_a_timeout_before_stop_waits_and_returns(make, backend):
    pq = make(backend=backend)
    pq.put(square, 3)
    t0 = time.monotonic()
    pq.join(0.2)
    assert time.monotonic() - t0 >= 0.19
    assert pq.is_alive()
    assert pq.get(timeout=20) == 9
    threading.Timer(0.1, pq.stop).start()  # stopped meanwhile: join returns once the workers end
    pq.join(30)
    assert not pq.is_alive()


def test_iteration_until_stopped_and_drained(make, backend):
    pq = make(backend=backend)
    tasks = [(square, i) for i in range(25)] + [("done",)]

    def produce():
        for task in tasks:
            pq.put(*task)
        pq.stop()

    threading.Thread(target=produce, daemon=True).start()
    assert list(pq) == [i * i for i in range(25)] + ["done"]
    pq.join(20)
    assert not pq.is_alive()


def test_iteration_raises_a_task_error_in_place(make):
    pq = make(backend="thread")
    pq.put(square, 2)
    pq.put(boom, 1)
    pq.put(square, 3)
    pq.stop()
    got = []
    with pytest.raises(WorkerError):
        for x in pq:
            got.append(x)
    assert got == [4]
    assert list(pq) == [9]


def test_map(make, backend):
    pq = make(backend=backend)
    n = 60  # more than the window (32 on two CPUs): the feeder must run beside the consumer
    assert list(pq.map(square, range(n))) == [i * i for i in range(n)]
    assert list(pq.map(square, [])) == []
    assert list(pq.map(square, range(3))) == [0, 1, 4]  # again, on the same queue


def test_map_with_a_failing_task_and_a_failing_iterable(make):
    pq = make(backend="thread", buffer_size=4)

    def items():
        yield 1
        yield 2
        raise RuntimeError("iterable broke")

    it = pq.map(square, items())
    assert next(it) == 1 and next(it) == 4
    with pytest.raises(RuntimeError, match="iterable broke"):
        next(it)
    it = pq.map(boom, range(3))
    with pytest.raises(WorkerError):
        next(it)
    it.close()
    assert pq.qsize() == 0  # the rest of that map was taken out
    assert list(pq.map(square, range(3))) == [0, 1, 4]


def test_map_left_early_leaves_the_queue_clean(make, backend):
    pq = make(backend=backend, buffer_size=4)
    it = pq.map(square, range(1000))
    assert [next(it) for _ in range(5)] == [0, 1, 4, 9, 16]
    it.close()
    assert pq.qsize() == 0
    pq.put(square, 12)
    assert pq.get(timeout=20) == 144


def fail_at(x, bad=1500):
    if x == bad:
        raise KeyError(f"item {x}")
    return x


def lambda_at(x, bad=1500):
    return (lambda: None) if x == bad else x


def exit_at(x, bad=1500):
    if x == bad:
        os._exit(3)
    return x


@pytest.mark.parametrize("chunksize", [None, 1, 7])
def test_map_groups_short_tasks_and_keeps_every_result_in_place(make, backend, chunksize):
    pq = make(backend=backend)
    n = 300 if chunksize == 1 else 3000  # trivial tasks from a list: automatic groups grow to their largest
    assert list(pq.map(square, list(range(n)), chunksize=chunksize)) == [i * i for i in range(n)]
    assert list(pq.map(square, range(5), chunksize=chunksize)) == [i * i for i in range(5)]


@pytest.mark.parametrize("chunksize", [None, 7])
def test_a_failing_item_in_a_group_raises_at_its_own_place(make, backend, chunksize):
    pq = make(backend=backend)
    got = []
    with pytest.raises(WorkerError, match="item 1500") as info:
        for x in pq.map(fail_at, list(range(3000)), chunksize=chunksize):
            got.append(x)
    assert got == list(range(1500))  # every result before it, none after
    assert "fail_at" in info.value.traceback
    assert isinstance(info.value.__cause__, KeyError)
    assert pq.qsize() == 0
    assert list(pq.map(square, list(range(300)))) == [i * i for i in range(300)]


@pytest.mark.parametrize("backend_name", ["process", "process-executor"])
def test_a_result_that_does_not_pickle_in_a_group_raises_at_its_own_place(make, request, backend_name):
    backend = "process" if backend_name == "process" else request.getfixturevalue("process_executor")
    pq = make(backend=backend)
    got = []
    with pytest.raises(WorkerError):
        for x in pq.map(lambda_at, list(range(3000)), chunksize=50):
            got.append(x)
    if backend == "process":  # the worker sends what does pickle; an executor fails the group
        assert got == list(range(1500))
    else:
        assert got == list(range(1500 // 50 * 50))
    assert list(pq.map(square, list(range(300)))) == [i * i for i in range(300)]


def test_a_worker_dying_in_a_group_fails_the_group_then_the_stream_goes_on(make, impl):
    pq = make(backend="process")
    got = []
    with pytest.raises(WorkerDied):
        for x in pq.map(exit_at, list(range(3000)), chunksize=50):
            got.append(x)
    # every result up to the group the dead worker ran, and no more: the groups queued behind
    # it ran elsewhere, but map() ends at the first failure. (The pure ProcessQueue sends from a
    # feeder thread, which os._exit may stop before it sent the groups just done.)
    if impl.is_pure_python:
        assert got == list(range(len(got))) and len(got) % 50 == 0 and len(got) <= 1500
    else:
        assert got == list(range(1500))
    assert list(pq.map(square, list(range(300)))) == [i * i for i in range(300)]
    assert len(pq._backend.pids()) == 2


def test_map_does_not_hold_an_item_back_while_a_generator_waits(make, backend):
    pq = make(backend=backend)
    first_out = threading.Event()

    def items():
        yield 1
        assert first_out.wait(20), "item 1 was held back until the next item came"
        yield 2

    it = pq.map(square, items())
    assert next(it) == 1
    first_out.set()
    assert list(it) == [4]


def test_big_items_travel_in_small_groups(make):
    from fastq._chunk import MAX_BYTES, MAX_ITEMS, byte_cap

    assert byte_cap(10, 0) == MAX_ITEMS  # not serialized: no cap
    assert byte_cap(10, 10 * MAX_BYTES) == 1
    assert byte_cap(8, MAX_BYTES) == 8 and byte_cap(1, 100) == MAX_ITEMS
    pq = make(backend="process")
    sizes = []
    prepare = pq._backend.prepare

    def watched(*args):  # the real prepare; the test only notes what it serialized
        task = prepare(*args)
        sizes.append(pq._backend.prepared_bytes)
        return task

    pq._backend.prepare = watched
    blob = 50_000
    blobs = [bytes([i % 256]) * blob for i in range(1000)]  # len() is quick: only the bytes limit groups
    assert list(pq.map(len, blobs)) == [blob] * 1000
    assert len(sizes) < 500 and max(sizes) <= MAX_BYTES + 2 * blob  # grouped, each group near 1 MiB at most


def test_map_checks_chunksize(make):
    pq = make(backend="thread")
    with pytest.raises(ValueError):
        pq.map(square, range(3), chunksize=0)
    with pytest.raises(TypeError):
        pq.map(square, range(3), chunksize="2")
    assert list(pq.map(square, range(3), chunksize=2)) == [0, 1, 4]


def test_group_size_follows_the_run_time():
    from fastq._chunk import MAX_BYTES, MAX_ITEMS, TARGET, _Chunk, next_size

    quick = _Chunk([0] * 8, None, 8e-7, 8)  # 0.1 us an item
    assert next_size(1, quick) == 2 and next_size(MAX_ITEMS // 2, quick) == MAX_ITEMS  # grows twofold at most
    slow = _Chunk([0], None, 10 * TARGET, 1)
    assert next_size(MAX_ITEMS, slow) == 1  # shrinks at once
    middle = _Chunk([0] * 4, None, TARGET, 4)
    assert next_size(MAX_ITEMS, middle) == 4
    assert next_size(1, _Chunk([0], None, 0.0, 1)) == 2  # a clock too coarse to see it
    big = _Chunk([bytes(300_000)] * 8, None, 8e-7, 8)  # quick, but each result is big
    assert next_size(64, big) == MAX_BYTES // sys.getsizeof(big.results[0]) == 3


def test_the_tail_of_a_map_shrinks_only_groups_worth_shrinking():
    from fastq._chunk import MAX_ITEMS, TARGET, _Chunk, tail_floor

    assert tail_floor(_Chunk([0] * 8, None, 8e-7, 8)) == MAX_ITEMS  # quick items: no smaller groups at the end
    assert tail_floor(_Chunk([0] * 4, None, 4 * TARGET, 4)) == 1  # slow ones: down to one at a time
    assert tail_floor(_Chunk([0], None, 0.0, 1)) == MAX_ITEMS


def test_automatic_groups_start_from_one_probe(make):
    # the first group is one item, sent alone; the groups after it are sized from its run time
    # at once (quick items: the largest groups), not grown from tiny ones while the window fills
    pq = make(backend="thread")
    sizes = []
    prepare = pq._backend.prepare

    def watched(func, args, kwargs):  # the real prepare; the test only notes the group sizes
        sizes.append(len(kwargs) if args is None else 1)
        return prepare(func, args, kwargs)

    pq._backend.prepare = watched
    assert list(pq.map(square, list(range(2000)))) == [i * i for i in range(2000)]
    assert sizes[0] == 1
    assert len(sizes) < 2000 // 16  # (how few depends on how soon the probe came back: not asserted)


def test_map_refuses_a_queue_with_results_pending(make):
    pq = make(backend="thread")
    pq.put("marker")
    with pytest.raises(ValueError):
        pq.map(square, range(3))
    with pytest.raises(TypeError):
        pq.map("not callable", range(3))


def test_map_after_stop_raises_closed(make):
    pq = make(backend="thread")
    pq.stop()
    with pytest.raises(Closed):
        list(pq.map(square, range(3)))


def test_context_manager_stops_and_joins(api, backend):
    ParallelQueue = api[0]
    with ParallelQueue(2, backend=backend) as pq:
        pq.put(echo_after, "x", 0.05)
        assert pq.get(timeout=20) == "x"
        pq.put(echo_after, "y", 0.05)
    assert pq.stopped and not pq.is_alive()
    assert pq.get(timeout=5) == "y"


def test_threads_put_and_get_concurrently(make):
    pq = make(backend="process", buffer_size=8)
    producers, per = 4, 25
    got = []
    lock = threading.Lock()

    def produce(tid):
        for i in range(per):
            pq.put(echo_after, (tid, i), 0.0005)

    def consume(k):
        for _ in range(k):
            item = pq.get(timeout=20)
            with lock:
                got.append(item)

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(producers)]
    threads += [threading.Thread(target=consume, args=(producers * per // 2,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(got) == sorted((t, i) for t in range(producers) for i in range(per))


# ---------------------------------------------------------------------------------------------
# ParallelSingleTaskQueue


@pytest.mark.parametrize("backend_name", ["process", "thread"])
def test_single_task_queue_runs_a_closure_in_order(make, backend_name):
    offset = 1000

    def nested(x, scale=1):  # a closure: reaches forked workers by inheritance only
        time.sleep(random.random() * 0.003)
        return (x + offset) * scale

    pq = make(nested, single=True, backend=backend_name)
    pq.put(1)
    pq.put(2, scale=10)
    assert [pq.get(timeout=20), pq.get(timeout=20)] == [1001, 10020]
    assert list(pq.map(range(40))) == [i + offset for i in range(40)]
    quick = make(lambda x: x + offset, single=True, backend=backend_name)  # grouped: a list of quick ones
    assert list(quick.map(list(range(2000)))) == [i + offset for i in range(2000)]


def test_single_task_queue_with_an_executor_and_errors(make, thread_executor):
    pq = make(boom, single=True, backend=thread_executor)
    pq.put(1)
    with pytest.raises(WorkerError):
        pq.get(timeout=20)
    with pytest.raises(TypeError):
        make("not callable", single=True, backend="thread")


# ---------------------------------------------------------------------------------------------
# no orphans


def test_no_worker_left_after_join(make):
    pq = make(backend="process")
    pq.put(pid_of)
    pq.get(timeout=20)
    pids = pq._backend.pids()
    assert len(pids) == 2 and all(alive(p) for p in pids)
    pq.stop()
    pq.join(20)
    assert not any(alive(p) for p in pids)


def test_no_worker_left_after_garbage_collection(api):
    ParallelQueue = api[0]
    pq = ParallelQueue(2)
    pq.put(echo_after, 1, 5.0)  # still running when the queue goes away
    pq.put(square, 3)
    pids = pq._backend.pids()
    collector = pq._backend.collector
    del pq
    gc.collect()
    assert wait_gone(pids)
    collector.join(10)
    assert not collector.is_alive()


def test_no_thread_left_after_garbage_collection(api):
    ParallelQueue = api[0]
    pq = ParallelQueue(2, backend="thread")
    pq.put(square, 3)
    threads = pq._backend.threads
    del pq
    gc.collect()
    for t in threads:
        t.join(5)
        assert not t.is_alive()


_ORPHAN_SCRIPT = textwrap.dedent("""
    import multiprocessing, os, signal, sys, time
    from fastq import ParallelQueue
    pq = ParallelQueue(2, ctx=multiprocessing.get_context(sys.argv[1]) if sys.argv[1] != "default" else None)
    pq.put(time.sleep, 30)
    forker = pq._backend.forker
    print(" ".join(map(str, pq._backend.pids() + ([forker.pid] if forker else []))), flush=True)
    time.sleep(0.2)
    os.kill(os.getpid(), signal.SIGKILL)
""")


@pytest.mark.parametrize("method", ["default", "fork", "spawn"])
def test_workers_exit_when_the_parent_is_killed(method):
    proc = run_python("-c", _ORPHAN_SCRIPT, method, timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    pids = [int(p) for p in proc.stdout.split()]
    forks = (method == "default" and multiprocessing.get_context().get_start_method() == "fork") or method == "fork"
    assert len(pids) == 2 + forks  # the workers, and the forker that forked them
    assert wait_gone(pids, 10)


_NON_DAEMON_SCRIPT = textwrap.dedent("""
    import sys, time
    from fastq import ParallelQueue

    def write(path, text):
        time.sleep(0.2)
        with open(path, "w") as f:
            f.write(text)

    pq = ParallelQueue(1, backend=sys.argv[1], daemon=False)
    pq.put(write, sys.argv[2], "finished")
    # no stop(): the interpreter exit stops the queue and lets the task finish
""")


@pytest.mark.parametrize("backend_name", ["process", "thread"])
def test_non_daemon_workers_finish_their_tasks_at_exit(tmp_path, backend_name):
    out = tmp_path / "out.txt"
    proc = run_python("-c", _NON_DAEMON_SCRIPT, backend_name, str(out), timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == "finished"


# ---------------------------------------------------------------------------------------------
# dask with worker processes


def test_dask_with_worker_processes(api):
    cluster, client = _dask_cluster(processes=True)
    try:
        ParallelQueue = api[0]
        with ParallelQueue(backend=client, buffer_size=8) as pq:
            assert list(pq.map(square, range(20))) == [i * i for i in range(20)]
            pq.put(boom, 1)
            pq.put("marker")
            with pytest.raises(WorkerError) as info:
                pq.get(timeout=30)
            assert isinstance(info.value.__cause__, ZeroDivisionError)
            assert "boom" in info.value.traceback
            assert pq.get(timeout=30) == "marker"
    finally:
        client.close()
        cluster.close()


def test_a_worker_error_pickles():
    err = WorkerError("ZeroDivisionError: x", "Traceback ...")
    again = pickle.loads(pickle.dumps(err))
    assert again.traceback == "Traceback ..." and str(again) == str(err)


def test_spawned_workers_where_fork_is_not_used(api, monkeypatch):
    # what macOS and Windows get: the platform's default start method, here forced to spawn
    monkeypatch.setattr(parallel, "_process_context", lambda func, ctx: multiprocessing.get_context("spawn"))
    ParallelQueue, ParallelSingleTaskQueue = api
    with ParallelQueue(2) as pq:
        assert list(pq.map(square, range(10))) == [i * i for i in range(10)]
        pq.put(boom, 1)
        with pytest.raises(WorkerError):
            pq.get(timeout=30)
    with ParallelSingleTaskQueue(square, 1) as pq:
        pq.put(7)
        assert pq.get(timeout=30) == 49
