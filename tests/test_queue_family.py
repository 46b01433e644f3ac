"""Behaviour of the in-process Queue family (Queue, LifoQueue, PriorityQueue, SimpleQueue) on both cores.

The specification is the standard library's `queue.py` (3.13's, shutdown included, on every
Python) plus fastq's extras `put_many`/`get_many`. Where a scenario can run on `queue.Queue`
itself, the test runs it there too and compares.
"""
import collections
import gc
import itertools
import os
import queue
import random
import signal
import sys
import threading
import time
import types
import weakref
from time import monotonic

import pytest

import fastq
from fastq import errors
from queue_model import HAS_STDLIB_SHUTDOWN, MODELS, NEGATIVE_TIMEOUT, model_class

# How long a thread gets to reach its blocking call before we assume it is blocked in it.
SETTLE = 0.2
# Upper bound for anything that should happen "promptly" (generous: CI machines stall).
PROMPT = 5.0


class Background:
    """Run fn(*args, **kwargs) in a daemon thread; keep its result or exception."""

    def __init__(self, fn, *args, **kwargs):
        self.result = None
        self.error = None
        self.finished_at = None
        self._started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(fn, args, kwargs), daemon=True)
        self.thread.start()
        self._started.wait()

    def _run(self, fn, args, kwargs):
        self._started.set()
        try:
            self.result = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: B902 - report whatever the call raised
            self.error = exc
        finally:
            self.finished_at = monotonic()

    def blocked(self, settle=SETTLE):
        """True if the call is still running after `settle` seconds."""
        self.thread.join(settle)
        return self.thread.is_alive()

    def join(self, timeout=PROMPT):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the background call did not return within {timeout} s"
        return self

    def value(self, timeout=PROMPT):
        self.join(timeout)
        if self.error is not None:
            raise self.error
        return self.result


def outcome(fn, *args, **kwargs):
    """('ok', result) or ('raise', exception type, message): comparable across cores."""
    try:
        return ("ok", fn(*args, **kwargs))
    except Exception as exc:
        return ("raise", type(exc), str(exc))


def put_many_outcome(q, *args, **kwargs):
    """outcome() of put_many, with the exception's `inserted` count in place of its message."""
    try:
        return ("ok", q.put_many(*args, **kwargs))
    except Exception as exc:
        return ("raise", type(exc), getattr(exc, "inserted", None))


def elapsed(fn, *args, **kwargs):
    start = monotonic()
    fn(*args, **kwargs)
    return monotonic() - start


def timed_raises(exc_type, fn, *args, **kwargs):
    start = monotonic()
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    return monotonic() - start, info.value


def drain(q):
    items = []
    while True:
        try:
            items.append(q.get_nowait())
        except (queue.Empty, errors.ShutDown):
            return items


BOUNDED = ("Queue", "LifoQueue", "PriorityQueue")


@pytest.fixture(params=BOUNDED)
def kind(request):
    return request.param


def order_of(kind, items):
    """The order in which a queue of this kind gives back `items` put in that order."""
    return {"Queue": list, "LifoQueue": lambda xs: list(reversed(xs)), "PriorityQueue": sorted}[kind](items)


# --- identity, public face --------------------------------------------------------------------


def test_exceptions_are_the_queue_modules_own(impl):
    assert fastq.Empty is queue.Empty is impl.Empty
    assert fastq.Full is queue.Full is impl.Full
    assert fastq.pure.Empty is queue.Empty and fastq.pure.Full is queue.Full
    if HAS_STDLIB_SHUTDOWN:
        assert fastq.ShutDown is queue.ShutDown
    assert impl.ShutDown is fastq.ShutDown
    assert issubclass(fastq.Closed, fastq.ShutDown)


def test_classes_come_from_the_core_under_test(impl):
    for name in ("Queue", "LifoQueue", "PriorityQueue", "SimpleQueue"):
        cls = getattr(impl, name)
        assert cls is not getattr(queue, name)
        expected = "fastq.pure" if impl.name == "python" else "fastq._core"
        assert cls.__module__.startswith(expected), (cls, cls.__module__)


def test_public_face_matches_the_run_time_switch():
    if fastq._cores.pure_requested() or fastq._c_core is None:
        assert fastq.IMPLEMENTATION == "python"
        assert fastq.Queue is fastq.pure.Queue
    else:
        assert fastq.IMPLEMENTATION == "c"
        assert fastq.Queue is fastq._core.Queue
        assert fastq.SimpleQueue is fastq._core.SimpleQueue
    assert fastq.pure.IMPLEMENTATION == "python"


def test_class_hierarchy_as_in_queue_module(impl):
    assert issubclass(impl.LifoQueue, impl.Queue)
    assert issubclass(impl.PriorityQueue, impl.Queue)
    assert not issubclass(impl.SimpleQueue, impl.Queue)


@pytest.mark.parametrize("name", ["Queue", "LifoQueue", "PriorityQueue", "SimpleQueue"])
def test_class_getitem(impl, name):
    cls = getattr(impl, name)
    alias = cls[int]
    assert isinstance(alias, types.GenericAlias)
    assert alias.__origin__ is cls
    assert alias.__args__ == (int,)
    assert isinstance(alias(), cls)


@pytest.mark.parametrize("name", ["Queue", "LifoQueue", "PriorityQueue", "SimpleQueue"])
def test_weakref_and_subclass_attributes(impl, name):
    cls = getattr(impl, name)
    q = cls()
    ref = weakref.ref(q)
    assert ref() is q

    class Sub(cls):
        def __init__(self, *args, tag="x"):
            self.tag = tag
            super().__init__(*args)

    s = Sub(tag="mine")
    s.extra = 5
    assert (s.tag, s.extra) == ("mine", 5)
    s.put(1)
    assert s.get() == 1
    del q, s
    gc.collect()
    assert ref() is None


# --- order ------------------------------------------------------------------------------------


def test_fifo_order(impl):
    q = impl.Queue()
    for i in range(100):
        q.put(i)
    assert q.qsize() == 100
    assert [q.get() for _ in range(100)] == list(range(100))
    assert q.empty()


def test_lifo_order(impl):
    q = impl.LifoQueue()
    for i in range(100):
        q.put(i)
    assert [q.get() for _ in range(100)] == list(range(99, -1, -1))


def test_priority_order(impl):
    rnd = random.Random(1)
    items = [rnd.randrange(1000) for _ in range(500)]
    q = impl.PriorityQueue()
    for x in items:
        q.put(x)
    assert [q.get() for _ in items] == sorted(items)
    pairs = [(rnd.randrange(5), str(i)) for i in range(50)]
    for p in pairs:
        q.put(p)
    assert [q.get() for _ in pairs] == sorted(pairs)


def test_order_interleaved_with_growth_and_shrink(impl, kind):
    """Interleave puts and gets across ring growth and shrinking, against the stdlib as model."""
    rnd = random.Random(7)
    q, model = getattr(impl, kind)(), getattr(queue, kind)()
    for _ in range(3000):
        if rnd.random() < 0.55 or model.empty():
            for _ in range(rnd.randrange(1, 40)):
                x = rnd.randrange(10**6)
                q.put(x)
                model.put(x)
        else:
            for _ in range(rnd.randrange(1, 60)):
                if model.empty():
                    break
                assert q.get_nowait() == model.get_nowait()
        assert q.qsize() == model.qsize()
    assert drain(q) == drain(model)


def test_priority_queue_incomparable_item_as_heapq(impl):
    """A failing comparison propagates and, as heapq in queue.py, leaves the item in the heap."""
    results = []
    for cls in (queue.PriorityQueue, impl.PriorityQueue):
        q = cls()
        q.put(1)
        q.put(3)
        with pytest.raises(TypeError):
            q.put("x")
        results.append((q.qsize(), q.unfinished_tasks, [outcome(q.get_nowait) for _ in range(4)]))
    assert results[1] == results[0]


def test_priority_queue_comparison_exception_propagates(impl):
    class Boom(Exception):
        pass

    class Touchy:
        def __lt__(self, other):
            raise Boom

    q = impl.PriorityQueue()
    q.put(Touchy())  # nothing to compare with yet
    with pytest.raises(Boom):
        q.put(Touchy())
    assert q.qsize() == 2  # as heapq: the new item stays
    q.get_nowait()  # one left in the heap: no comparison needed
    q.get_nowait()
    assert q.empty()


# --- maxsize, Full, Empty, timeouts -----------------------------------------------------------


def test_qsize_empty_full(impl, kind):
    q = getattr(impl, kind)(3)
    assert (q.qsize(), q.empty(), q.full()) == (0, True, False)
    q.put(1)
    assert (q.qsize(), q.empty(), q.full()) == (1, False, False)
    q.put(2)
    q.put(3)
    assert (q.qsize(), q.empty(), q.full()) == (3, False, True)


@pytest.mark.parametrize("maxsize", [0, -1, -5])
def test_maxsize_nonpositive_is_unbounded(impl, kind, maxsize):
    q = getattr(impl, kind)(maxsize)
    for i in range(1000):
        q.put_nowait(i)
    assert not q.full()
    assert q.qsize() == 1000
    assert q.maxsize == maxsize


def test_constructor_keyword(impl, kind):
    q = getattr(impl, kind)(maxsize=2)
    assert q.maxsize == 2


def test_full_and_empty_without_blocking(impl, kind):
    q = getattr(impl, kind)(2)
    q.put(1)
    q.put_nowait(2)
    with pytest.raises(queue.Full):
        q.put_nowait(3)
    with pytest.raises(queue.Full):
        q.put(3, block=False)
    with pytest.raises(queue.Full):
        q.put(3, False, 10)  # timeout ignored when not blocking
    assert sorted([q.get(), q.get_nowait()]) == [1, 2]
    with pytest.raises(queue.Empty):
        q.get_nowait()
    with pytest.raises(queue.Empty):
        q.get(block=False)
    with pytest.raises(queue.Empty):
        q.get(False, 10)
    assert q.unfinished_tasks == 2


def test_keyword_arguments_as_queue_py(impl, kind):
    q = getattr(impl, kind)(1)
    assert q.put(item=1, block=False, timeout=None) is None
    assert q.get(block=True, timeout=1) == 1


@pytest.mark.parametrize("timeout", [0, 0.0])
def test_zero_timeout_does_not_wait(impl, kind, timeout):
    q = getattr(impl, kind)(1)
    took, _ = timed_raises(queue.Empty, q.get, timeout=timeout)
    assert took < 1.0
    q.put(1)
    took, _ = timed_raises(queue.Full, q.put, 2, timeout=timeout)
    assert took < 1.0


def test_get_timeout(impl, kind):
    q = getattr(impl, kind)()
    took, _ = timed_raises(queue.Empty, q.get, timeout=0.2)
    assert 0.18 <= took < PROMPT
    took, _ = timed_raises(queue.Empty, q.get, True, 0.1)
    assert 0.09 <= took < PROMPT


def test_put_timeout(impl, kind):
    q = getattr(impl, kind)(1)
    q.put(0)
    took, _ = timed_raises(queue.Full, q.put, 1, timeout=0.2)
    assert 0.18 <= took < PROMPT
    assert q.qsize() == 1 and q.unfinished_tasks == 1


def test_timeout_as_int_and_bool(impl):
    q = impl.Queue()
    q.put(1)
    assert q.get(timeout=1) == 1
    with pytest.raises(queue.Empty):
        q.get(timeout=False)  # False == 0 seconds, as in queue.py


def test_blocked_get_woken_by_put(impl, kind):
    q = getattr(impl, kind)()
    getter = Background(q.get, timeout=30)
    assert getter.blocked()
    q.put("x")
    assert getter.value() == "x"


def test_blocked_put_woken_by_get(impl, kind):
    q = getattr(impl, kind)(1)
    q.put(1)
    putter = Background(q.put, 2, timeout=30)
    assert putter.blocked()
    assert q.get() == 1
    putter.value()
    assert q.get() == 2


def test_blocked_getters_each_get_one_item(impl):
    q = impl.Queue()
    getters = [Background(q.get) for _ in range(5)]
    time.sleep(SETTLE)
    for i in range(5):
        q.put(i)
    assert sorted(g.value() for g in getters) == list(range(5))


def test_blocked_putters_each_put_one_item(impl):
    q = impl.Queue(1)
    q.put(-1)
    putters = [Background(q.put, i) for i in range(5)]
    time.sleep(SETTLE)
    got = [q.get(timeout=PROMPT) for _ in range(6)]
    for p in putters:
        p.value()
    assert sorted(got) == list(range(-1, 5))
    assert q.empty()


# --- negative timeouts: ValueError exactly where queue.py raises it ----------------------------


@pytest.mark.parametrize("maxsize", [0, 1, 3])
@pytest.mark.parametrize("prefill", [0, 1])
@pytest.mark.parametrize("block", [True, False])
def test_negative_timeout_put_as_queue_py(impl, kind, maxsize, prefill, block):
    """put raises ValueError for a negative timeout only when blocking on a bounded queue."""
    results = []
    for q in (getattr(queue, kind)(maxsize), getattr(impl, kind)(maxsize)):
        for i in range(prefill):
            q.put(i)
        results.append((outcome(q.put, "x", block, -1), q.qsize()))
    assert results[1] == results[0]
    if block and maxsize > 0:
        assert results[1][0] == ("raise", ValueError, NEGATIVE_TIMEOUT)


@pytest.mark.parametrize("prefill", [0, 1])
@pytest.mark.parametrize("block", [True, False])
def test_negative_timeout_get_as_queue_py(impl, kind, prefill, block):
    """get raises ValueError for a negative timeout whenever it blocks, empty or not."""
    results = []
    for q in (getattr(queue, kind)(), getattr(impl, kind)()):
        for i in range(prefill):
            q.put(i)
        results.append((outcome(q.get, block, -0.5), q.qsize()))
    assert results[1] == results[0]
    if block:
        assert results[1][0] == ("raise", ValueError, NEGATIVE_TIMEOUT)


def test_negative_timeout_simple_queue(impl):
    q = impl.SimpleQueue()
    q.put(1)
    with pytest.raises(ValueError, match="non-negative"):
        q.get(timeout=-1)
    with pytest.raises(ValueError, match="non-negative"):
        q.get_many(5, timeout=-1)
    assert q.qsize() == 1
    assert q.get(False, 5) == 1  # timeout ignored when not blocking, as _queue.SimpleQueue
    with pytest.raises(queue.Empty):
        q.get(False, 5)


# --- task_done, join --------------------------------------------------------------------------


def test_task_done_too_many(impl, kind):
    q = getattr(impl, kind)()
    with pytest.raises(ValueError, match=r"^task_done\(\) called too many times$"):
        q.task_done()
    q.put(1)
    q.get()
    q.task_done()
    with pytest.raises(ValueError, match=r"task_done\(\) called too many times"):
        q.task_done()
    assert q.unfinished_tasks == 0


def test_unfinished_tasks_counts_puts_not_gets(impl, kind):
    q = getattr(impl, kind)()
    for i in range(5):
        q.put(i)
    assert q.unfinished_tasks == 5
    for _ in range(5):
        q.get()
    assert q.unfinished_tasks == 5
    q.task_done()
    assert q.unfinished_tasks == 4
    q.task_done()  # task_done before the matching get is allowed, as in queue.py
    q.put(9)
    q.task_done()
    assert q.unfinished_tasks == 3


def test_join_without_tasks_returns(impl, kind):
    q = getattr(impl, kind)()
    assert elapsed(q.join) < 1.0
    q.put(1)
    q.get()
    q.task_done()
    assert elapsed(q.join) < 1.0


@pytest.mark.timeout(60)
def test_join_across_threads(impl, kind):
    q = getattr(impl, kind)(4)
    done = []

    def worker():
        while True:
            item = q.get()
            if item == 0:  # the stop signal: an int, so that a PriorityQueue can compare it
                q.task_done()
                return
            time.sleep(0.001)
            done.append(item)
            q.task_done()

    workers = [threading.Thread(target=worker) for _ in range(3)]
    for w in workers:
        w.start()
    for i in range(1, 101):
        q.put(i)
    q.join()
    assert sorted(done) == list(range(1, 101))
    assert q.unfinished_tasks == 0
    for _ in workers:
        q.put(0)
    q.join()
    for w in workers:
        w.join(PROMPT)


def test_join_blocks_until_last_task_done(impl):
    q = impl.Queue()
    q.put(1)
    q.put(2)
    joiner = Background(q.join)
    assert joiner.blocked()
    q.get()
    q.get()
    q.task_done()
    assert joiner.blocked()
    q.task_done()
    joiner.value()


def test_several_joiners_are_all_released(impl):
    q = impl.Queue()
    q.put(1)
    joiners = [Background(q.join) for _ in range(4)]
    time.sleep(SETTLE)
    assert all(j.thread.is_alive() for j in joiners)
    q.get()
    q.task_done()
    for j in joiners:
        j.value()


# --- shutdown (3.13 semantics on every Python) -------------------------------------------------


def test_shutdown_graceful(impl, kind):
    q = getattr(impl, kind)()
    q.put(1)
    q.put(2)
    assert q.is_shutdown is False
    q.shutdown()
    assert q.is_shutdown is True
    with pytest.raises(errors.ShutDown):
        q.put(3)
    with pytest.raises(errors.ShutDown):
        q.put_nowait(3)
    assert q.qsize() == 2
    assert sorted([q.get(), q.get_nowait()]) == [1, 2]  # items already queued still come out
    for call in (q.get, q.get_nowait, lambda: q.get(timeout=0.1), lambda: q.get(timeout=-1)):
        with pytest.raises(errors.ShutDown):  # ShutDown, not Empty, once drained
            call()
    assert q.unfinished_tasks == 2
    q.task_done()
    q.task_done()
    assert elapsed(q.join) < 1.0
    q.shutdown()  # twice is fine
    q.shutdown(immediate=True)


def test_shutdown_immediate(impl, kind):
    q = getattr(impl, kind)()
    for i in range(3):
        q.put(i)
    q.get()
    q.shutdown(immediate=True)
    assert q.is_shutdown and q.qsize() == 0 and q.empty()
    assert q.unfinished_tasks == 1  # the drained items count as done, the one taken does not
    with pytest.raises(errors.ShutDown):
        q.get_nowait()
    with pytest.raises(errors.ShutDown):
        q.put(5)
    q.task_done()
    with pytest.raises(ValueError):
        q.task_done()
    assert elapsed(q.join) < 1.0


def test_shutdown_immediate_does_not_go_below_zero(impl):
    q = impl.Queue()
    q.put(1)
    q.put(2)
    q.task_done()
    q.task_done()  # consumer claimed both before getting them
    q.shutdown(immediate=True)
    assert q.unfinished_tasks == 0 and q.qsize() == 0


def test_put_after_shutdown_on_full_queue_is_shutdown(impl, kind):
    q = getattr(impl, kind)(1)
    q.put(0)
    q.shutdown()
    for call in (lambda: q.put(1), lambda: q.put(1, block=False), lambda: q.put(1, timeout=-1)):
        with pytest.raises(errors.ShutDown):
            call()
    assert q.full()


@pytest.mark.skipif(not HAS_STDLIB_SHUTDOWN, reason="queue.Queue.shutdown is new in 3.13")
@pytest.mark.parametrize("immediate", [False, True])
def test_shutdown_matches_stdlib(impl, kind, immediate):
    results = []
    for cls in (getattr(queue, kind), getattr(impl, kind)):
        q = cls(3)
        trace = [outcome(q.put, i) for i in (5, 1, 4)]
        trace.append(outcome(q.get))
        trace.append(outcome(q.shutdown, immediate))
        trace += [outcome(q.put, 9, False), outcome(q.get, False), outcome(q.get, True, -1)]
        trace += [outcome(q.task_done) for _ in range(4)]
        trace.append((q.qsize(), q.unfinished_tasks, q.is_shutdown, q.full(), q.empty()))
        results.append(trace)
    assert results[1] == results[0]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("immediate", [False, True])
def test_shutdown_wakes_blocked_getters(impl, kind, immediate):
    q = getattr(impl, kind)()
    getters = [Background(q.get) for _ in range(3)] + [Background(q.get, timeout=60)]
    getters.append(Background(q.get_many, 5))
    time.sleep(SETTLE)
    assert all(g.thread.is_alive() for g in getters)
    q.shutdown(immediate=immediate)
    for g in getters:
        g.join()
        assert isinstance(g.error, errors.ShutDown), g.error


@pytest.mark.timeout(60)
@pytest.mark.parametrize("immediate", [False, True])
def test_shutdown_wakes_blocked_putters(impl, kind, immediate):
    q = getattr(impl, kind)(1)
    q.put(0)
    putters = [Background(q.put, 1), Background(q.put, 2, timeout=60), Background(q.put_many, [3, 4])]
    assert putters[0].blocked()
    q.shutdown(immediate=immediate)
    for p in putters:
        p.join()
        assert isinstance(p.error, errors.ShutDown), p.error
    assert putters[2].error.inserted == 0
    assert q.qsize() == (0 if immediate else 1)


@pytest.mark.timeout(60)
def test_shutdown_immediate_wakes_joiners(impl, kind):
    q = getattr(impl, kind)()
    q.put(1)
    q.put(2)
    joiners = [Background(q.join) for _ in range(3)]
    assert joiners[0].blocked()
    q.shutdown(immediate=True)
    for j in joiners:
        j.value()


@pytest.mark.timeout(60)
def test_shutdown_graceful_leaves_joiners_waiting(impl):
    q = impl.Queue()
    q.put(1)
    joiner = Background(q.join)
    q.shutdown()
    assert joiner.blocked()
    q.get()
    q.task_done()
    joiner.value()


def test_get_after_shutdown_nonblocking_returns_items(impl, kind):
    q = getattr(impl, kind)()
    q.put(1)
    q.shutdown()
    assert q.get(block=False) == 1
    with pytest.raises(errors.ShutDown):
        q.get(block=False)


# --- put_many / get_many ----------------------------------------------------------------------


def test_put_many_get_many_order(impl, kind):
    q = getattr(impl, kind)()
    items = [5, 3, 9, 1, 7, 2]
    assert q.put_many(items) is None
    assert q.qsize() == 6 and q.unfinished_tasks == 6
    got = q.get_many(4)
    assert isinstance(got, list)
    got += q.get_many(100)
    assert got == order_of(kind, items)
    assert q.empty()


def test_put_many_accepts_any_iterable(impl, kind):
    q = getattr(impl, kind)()
    q.put_many(i for i in range(3))
    q.put_many(range(3, 5))
    q.put_many(())
    q.put_many(iter([5]))
    assert sorted(q.get_many(10)) == list(range(6))
    assert q.unfinished_tasks == 6


@pytest.mark.parametrize("bad", [None, 5, 1.5, object()])
def test_put_many_non_iterable_raises_type_error(impl, kind, bad):
    q = getattr(impl, kind)(3)
    with pytest.raises(TypeError):
        q.put_many(bad)
    assert q.qsize() == 0 and q.unfinished_tasks == 0


def test_put_many_failing_iterable_queues_nothing(impl, kind):
    def items():
        yield 1
        yield 2
        raise RuntimeError("iterator broke")

    q = getattr(impl, kind)()
    with pytest.raises(RuntimeError, match="iterator broke"):
        q.put_many(items())
    assert q.qsize() == 0 and q.unfinished_tasks == 0


def test_put_many_nonblocking_partial_insert(impl, kind):
    q = getattr(impl, kind)(4)
    q.put(100)
    with pytest.raises(queue.Full) as info:
        q.put_many([10, 20, 30, 40, 50], block=False)
    assert info.value.inserted == 3
    assert q.qsize() == 4 and q.unfinished_tasks == 4 and q.full()
    assert q.get_many(10) == order_of(kind, [100, 10, 20, 30])  # the prefix, nothing else
    with pytest.raises(queue.Full) as info:
        q.put_many([1, 2, 3, 4, 5, 6], False, 10)  # timeout ignored when not blocking
    assert info.value.inserted == 4
    q.get_many(4)
    q.put(1)
    q.put(2)
    q.put(3)
    q.put(4)
    with pytest.raises(queue.Full) as info:
        q.put_many([5], block=False)
    assert info.value.inserted == 0


def test_put_many_timeout_partial_insert(impl, kind):
    q = getattr(impl, kind)(3)
    took, exc = timed_raises(queue.Full, q.put_many, range(5), timeout=0.2)
    assert exc.inserted == 3
    assert 0.18 <= took < PROMPT
    assert q.get_many(10) == order_of(kind, [0, 1, 2])
    assert q.unfinished_tasks == 3
    took, exc = timed_raises(queue.Full, q.put_many, [7, 8, 9, 10], True, 0)
    assert exc.inserted == 3 and took < 1.0


def test_put_many_fits_exactly(impl, kind):
    q = getattr(impl, kind)(3)
    q.put_many([1, 2, 3], block=False)
    assert q.full()
    q.put_many([], block=False)
    assert q.qsize() == 3


@pytest.mark.timeout(60)
def test_put_many_blocks_until_everything_is_in(impl):
    q = impl.Queue(3)
    got = []

    def consume():
        while len(got) < 200:
            got.extend(q.get_many(7))

    consumer = Background(consume)
    q.put_many(range(200))
    consumer.value(30)
    assert got == list(range(200))


@pytest.mark.timeout(60)
def test_put_many_with_timeout_succeeds_when_consumer_keeps_up(impl):
    q = impl.Queue(2)
    consumer = Background(lambda: [q.get() for _ in range(50)])
    q.put_many(range(50), timeout=30)
    assert consumer.value(30) == list(range(50))


@pytest.mark.timeout(60)
def test_put_many_timeout_with_partial_progress_loses_nothing(impl):
    """A consumer takes a few, then stops: put_many times out with an exact count, no loss, no dup."""
    q = impl.Queue(2)
    consumer = Background(lambda: [q.get(timeout=PROMPT) for _ in range(3)])
    with pytest.raises(queue.Full) as info:
        q.put_many(range(10), timeout=1.0)
    taken = consumer.value()
    inserted = info.value.inserted
    # 2 fit at once, 3 more as the consumer took 3 (fewer only if it was starved for a whole second),
    # then the queue stayed full; what went in is exactly the prefix the count says
    assert 2 <= inserted <= 5
    assert taken + drain(q) == list(range(inserted))
    assert q.unfinished_tasks == inserted


def test_put_many_after_shutdown(impl, kind):
    q = getattr(impl, kind)()
    q.shutdown()
    with pytest.raises(errors.ShutDown) as info:
        q.put_many([1, 2])
    assert info.value.inserted == 0
    assert q.qsize() == 0


@pytest.mark.timeout(60)
def test_put_many_shutdown_while_blocked_reports_inserted(impl):
    q = impl.Queue(2)
    putter = Background(q.put_many, range(5))
    assert putter.blocked()
    q.shutdown()
    putter.join()
    assert isinstance(putter.error, errors.ShutDown)
    assert putter.error.inserted == 2
    assert drain(q) == [0, 1]


def test_put_many_negative_timeout(impl):
    q = impl.Queue(2)
    with pytest.raises(ValueError, match="non-negative"):
        q.put_many([1], timeout=-1)
    assert q.qsize() == 0
    q.put_many([1], block=False, timeout=-1)  # ignored when not blocking
    assert q.qsize() == 1


def test_get_many_takes_what_is_there(impl, kind):
    q = getattr(impl, kind)()
    q.put_many([3, 1, 2])
    assert sorted(q.get_many(10)) == [1, 2, 3]
    q.put(4)
    assert q.get_many(1) == [4]
    assert q.unfinished_tasks == 4


@pytest.mark.parametrize("max_items", [0, -1, -100])
def test_get_many_max_items_below_one(impl, kind, max_items):
    q = getattr(impl, kind)()
    q.put(1)
    with pytest.raises(ValueError):
        q.get_many(max_items)
    with pytest.raises(ValueError):
        q.get_many(max_items, block=False)
    assert q.qsize() == 1


@pytest.mark.parametrize("max_items", [1.0, "3", None])
def test_get_many_max_items_not_an_integer(impl, kind, max_items):
    q = getattr(impl, kind)()
    q.put(1)
    with pytest.raises(TypeError):
        q.get_many(max_items)
    assert q.qsize() == 1


def test_get_many_max_items_index(impl):
    class Three:
        def __index__(self):
            return 3

    q = impl.Queue()
    q.put_many(range(5))
    assert q.get_many(Three()) == [0, 1, 2]
    assert q.get_many(True) == [3]


def test_get_many_empty(impl, kind):
    q = getattr(impl, kind)()
    with pytest.raises(queue.Empty):
        q.get_many(5, block=False)
    took, _ = timed_raises(queue.Empty, q.get_many, 5, timeout=0.2)
    assert 0.18 <= took < PROMPT
    with pytest.raises(ValueError, match="non-negative"):
        q.get_many(5, timeout=-1)
    with pytest.raises(queue.Empty):
        q.get_many(5, False, -1)


def test_get_many_waits_only_for_the_first_item(impl):
    q = impl.Queue()
    getter = Background(q.get_many, 10, timeout=30)
    assert getter.blocked()
    q.put("first")
    assert getter.value() == ["first"]
    start = monotonic()
    Background(lambda: (time.sleep(0.1), q.put_many([1, 2])))
    assert q.get_many(10, timeout=30) in ([1], [1, 2])
    assert monotonic() - start < PROMPT


def test_get_many_wakes_blocked_putters(impl):
    q = impl.Queue(2)
    q.put_many([1, 2])
    putters = [Background(q.put, 3), Background(q.put, 4)]
    time.sleep(SETTLE)
    assert q.get_many(2) == [1, 2]
    for p in putters:
        p.value()
    assert sorted(q.get_many(5)) == [3, 4]


def test_get_many_after_shutdown(impl, kind):
    q = getattr(impl, kind)()
    q.put_many([1, 2])
    q.shutdown()
    assert sorted(q.get_many(5)) == [1, 2]
    with pytest.raises(errors.ShutDown):
        q.get_many(5)
    with pytest.raises(errors.ShutDown):
        q.get_many(5, block=False)


def test_get_many_is_get_then_get_nowait(impl, kind):
    """Against the stdlib: get_many(n) takes the same items as one get and up to n-1 get_nowait."""
    rnd = random.Random(3)
    q, model = getattr(impl, kind)(), getattr(queue, kind)()
    for _ in range(200):
        items = [rnd.randrange(100) for _ in range(rnd.randrange(0, 8))]
        q.put_many(items)
        for x in items:
            model.put(x)
        n = rnd.randrange(1, 6)
        if model.empty():
            with pytest.raises(queue.Empty):
                q.get_many(n, block=False)
            continue
        expected = [model.get()] + [model.get() for _ in range(min(n - 1, model.qsize()))]
        assert q.get_many(n) == expected


# --- SimpleQueue ------------------------------------------------------------------------------


def test_simple_queue_basics(impl):
    q = impl.SimpleQueue()
    assert q.empty() and q.qsize() == 0
    q.put(1)
    q.put(2, block=False)
    q.put(3, True, -1)  # block and timeout are ignored: put never blocks
    q.put_nowait(4)
    q.put(item=5)
    assert not q.empty() and q.qsize() == 5
    assert [q.get(), q.get_nowait(), q.get(False), q.get(True, 1), q.get(timeout=None)] == [1, 2, 3, 4, 5]
    with pytest.raises(queue.Empty):
        q.get_nowait()
    took, _ = timed_raises(queue.Empty, q.get, timeout=0.2)
    assert 0.18 <= took < PROMPT


def test_simple_queue_has_no_task_tracking_or_shutdown(impl):
    q = impl.SimpleQueue()
    for name in ("shutdown", "task_done", "join", "maxsize", "full"):
        assert not hasattr(q, name), name


def test_simple_queue_put_many_get_many(impl):
    q = impl.SimpleQueue()
    q.put_many(range(10))
    q.put_many(x for x in "ab")
    q.put_many([], block=False, timeout=0)
    assert q.qsize() == 12
    assert q.get_many(4) == [0, 1, 2, 3]
    assert q.get_many(100) == [4, 5, 6, 7, 8, 9, "a", "b"]
    with pytest.raises(queue.Empty):
        q.get_many(3, block=False)
    took, _ = timed_raises(queue.Empty, q.get_many, 3, timeout=0.2)
    assert 0.18 <= took < PROMPT
    for bad in (0, -1):
        with pytest.raises(ValueError):
            q.get_many(bad)
    with pytest.raises(TypeError):
        q.get_many(2.0)
    with pytest.raises(TypeError):
        q.put_many(3)
    assert q.empty()


def test_simple_queue_get_many_waits_only_for_the_first(impl):
    q = impl.SimpleQueue()
    getter = Background(q.get_many, 10, timeout=30)
    assert getter.blocked()
    q.put("x")
    assert getter.value() == ["x"]


def test_simple_queue_blocked_getters(impl):
    q = impl.SimpleQueue()
    getters = [Background(q.get) for _ in range(4)]
    time.sleep(SETTLE)
    q.put_many(range(4))
    assert sorted(g.value() for g in getters) == [0, 1, 2, 3]


def test_simple_queue_reentrant_put_from_del(impl):
    """bpo-14976: put() may run from __del__ (GC) in the middle of another put()."""
    q = impl.SimpleQueue()
    counter = itertools.count()

    class Circular:
        def __init__(self):
            self.me = self

        def __del__(self):
            q.put(next(counter))

    results = []
    while True:
        obj = Circular()
        q.put(next(counter))
        del obj
        results.append(q.get())
        if results[-1] >= 3000:
            break
    assert results == list(range(results[-1] + 1))


# --- subclasses overriding the hooks behave exactly as queue.Queue ------------------------------


class FailingQueueException(Exception):
    pass


def make_failing_queue(base):
    """CPython's test_queue FailingQueue, built on `base`."""

    class FailingQueue(base):
        def __init__(self, *args):
            self.fail_next_put = False
            self.fail_next_get = False
            base.__init__(self, *args)

        def _put(self, item):
            if self.fail_next_put:
                self.fail_next_put = False
                raise FailingQueueException("You Lose")
            return base._put(self, item)

        def _get(self):
            if self.fail_next_get:
                self.fail_next_get = False
                raise FailingQueueException("You Lose")
            return base._get(self)

    return FailingQueue


def failing_queue_trace(q):
    trace = []
    for i in range(3):
        trace.append(outcome(q.put, i))
    q.fail_next_put = True
    trace.append(outcome(q.put, "boom", False))  # full: Full, and the flag stays set
    trace.append(outcome(q.put, "boom", True, 0.01))
    trace.append((q.qsize(), q.unfinished_tasks, q.full()))
    q.get()
    trace.append(outcome(q.put, "x", False))  # fails in _put: nothing changes
    trace.append((q.qsize(), q.unfinished_tasks, q.full()))
    trace.append(outcome(q.put, "y", False))
    q.fail_next_get = True
    trace.append(outcome(q.get))
    trace.append((q.qsize(), q.unfinished_tasks))
    trace.append([outcome(q.get_nowait) for _ in range(4)])
    q.put_many(["a", "b"])
    if HAS_STDLIB_SHUTDOWN:  # the model has shutdown on 3.13+ only
        q.fail_next_get = True
        trace.append(outcome(q.shutdown, True))  # _get fails while draining: propagates
        trace.append((q.qsize(), q.unfinished_tasks, q.is_shutdown))
    return trace


def test_failing_queue_matches_stdlib(impl):
    expected = failing_queue_trace(model_class(make_failing_queue(queue.Queue))(3))
    assert failing_queue_trace(make_failing_queue(impl.Queue)(3)) == expected


@pytest.mark.timeout(60)
def test_failing_queue_blocked_put_raises_after_wakeup(impl):
    q = make_failing_queue(impl.Queue)(1)
    q.put(1)
    q.fail_next_put = True
    Background(lambda: (time.sleep(0.1), q.get()))
    with pytest.raises(FailingQueueException):
        q.put(2, timeout=30)
    assert q.qsize() == 0 and q.unfinished_tasks == 1
    q.put(3)
    assert q.get() == 3


@pytest.mark.parametrize("hooked", [False, True], ids=["PriorityQueue", "FailingQueue"])
def test_failing_put_many_keeps_prefix_and_wakes_getters(impl, hooked):
    q = make_failing_queue(impl.PriorityQueue)() if hooked else impl.PriorityQueue()
    getter = Background(q.get, timeout=30)
    assert getter.blocked()
    with pytest.raises(TypeError):  # 1 goes in, "x" fails its comparison (and stays, as heapq)
        q.put_many([1, "x"])
    assert getter.value() == 1
    assert q.unfinished_tasks == 1


def test_failing_get_many_loses_nothing(impl):
    class CountdownQueue(impl.Queue):
        fail_at = None

        def _get(self):
            if self.fail_at is not None:
                self.fail_at -= 1
                if self.fail_at == 0:
                    self.fail_at = None
                    raise FailingQueueException("You Lose")
            return super()._get()

    q = CountdownQueue()
    q.put_many(range(6))
    q.fail_at = 1
    with pytest.raises(FailingQueueException):  # the first _get fails: nothing taken
        q.get_many(3)
    assert q.qsize() == 6
    q.fail_at = 3
    first = q.get_many(5)  # the third _get fails: the two taken are returned, not lost
    assert first == [0, 1]
    assert first + q.get_many(10) == list(range(6))


def own_list_queue(base):
    class ListQueue(base):
        """Keeps its own plain list in self.queue."""

        def _init(self, maxsize):
            self.queue = []

        def _qsize(self):
            return len(self.queue)

        def _put(self, item):
            self.queue.append(item)

        def _get(self):
            return self.queue.pop(0)

    return ListQueue


def unique_queue(base):
    class UniqueQueue(base):
        """Drops items it has seen; extends the base hooks rather than replacing them."""

        def _init(self, maxsize):
            super()._init(maxsize)
            self.seen = set()

        def _put(self, item):
            if item not in self.seen:
                self.seen.add(item)
                super()._put(item)

    return UniqueQueue


def urgent_queue(base):
    class UrgentQueue(base):
        """Items starting with '!' jump the line through the deque the base _init made."""

        def _put(self, item):
            if item.startswith("!"):
                self.queue.appendleft(item)
            else:
                super()._put(item)

    return UrgentQueue


def stable_priority_queue(base):
    class StablePriorityQueue(base):
        """(priority, item) in, item out, ties in insertion order."""

        def _init(self, maxsize):
            super()._init(maxsize)
            self.counter = itertools.count()

        def _put(self, item):
            priority, value = item
            super()._put((priority, next(self.counter), value))

        def _get(self):
            return super()._get()[2]

    return StablePriorityQueue


def recording_lifo_queue(base):
    class RecordingLifoQueue(base):
        def _init(self, maxsize):
            super()._init(maxsize)
            self.log = []

        def _get(self):
            item = super()._get()
            self.log.append(item)
            return item

    return RecordingLifoQueue


def subclass_trace(cls, items):
    q = cls(4)
    trace = [outcome(q.put, x, False) for x in items[:6]]
    trace.append((q.qsize(), q.unfinished_tasks, q.full(), q.empty()))
    trace.append(outcome(q.get_nowait))
    trace.append(put_many_outcome(q, items[6:], False))
    trace.append(put_many_outcome(q, items[6:], False))
    trace.append(outcome(q.get_many, 2))
    trace.append(outcome(q.task_done))
    trace.append((q.qsize(), q.unfinished_tasks, type(q.queue).__name__, list(q.queue)))
    trace.append([outcome(q.get, True, 0.01) for _ in range(6)])
    for attr in ("seen", "log"):
        if hasattr(q, attr):
            trace.append(sorted(getattr(q, attr), key=repr))
    if HAS_STDLIB_SHUTDOWN:  # the model has shutdown on 3.13+ only
        q.put_many(items[:2])
        q.shutdown(immediate=True)
        trace.append((q.qsize(), q.unfinished_tasks, outcome(q.get)))
    return trace


@pytest.mark.parametrize(
    "factory, base, items",
    [
        (own_list_queue, "Queue", [1, 2, 3, 4, 5, 6, 7, 8]),
        (unique_queue, "Queue", [1, 2, 1, 3, 2, 4, 5, 1, 6, 7]),
        (urgent_queue, "Queue", ["a", "b", "!c", "d", "!e", "f", "!g", "h"]),
        (stable_priority_queue, "PriorityQueue", [(2, "a"), (1, "b"), (2, "c"), (1, "d"), (0, "e"), (3, "f")]),
        (recording_lifo_queue, "LifoQueue", [1, 2, 3, 4, 5, 6, 7, 8]),
    ],
    ids=lambda v: getattr(v, "__name__", None) if callable(v) else None,
)
def test_subclass_hooks_match_stdlib(impl, factory, base, items):
    expected = subclass_trace(model_class(factory(getattr(queue, base))), items)
    assert subclass_trace(factory(getattr(impl, base)), items) == expected


def test_subclass_queue_attribute_is_its_own(impl):
    q = own_list_queue(impl.Queue)()
    assert type(q.queue) is list
    q.put(1)
    assert q.queue == [1]
    q.queue.append(2)  # the subclass's own list is the storage: the hooks see it
    assert q.qsize() == 2
    assert [q.get(), q.get()] == [1, 2]
    u = urgent_queue(impl.Queue)()
    assert isinstance(u.queue, collections.deque)  # the base _init's deque, as in queue.py


@pytest.mark.timeout(60)
def test_subclass_hooks_across_threads(impl):
    q = own_list_queue(impl.Queue)(2)
    got = []
    consumer = Background(lambda: got.extend(q.get(timeout=PROMPT) for _ in range(100)))
    for i in range(100):
        q.put(i, timeout=PROMPT)
    consumer.value(30)
    assert got == list(range(100))
    getter = Background(q.get)
    assert getter.blocked()
    q.shutdown()
    getter.join()
    assert isinstance(getter.error, errors.ShutDown)


def test_subclass_without_hook_overrides(impl, kind):
    base = getattr(impl, kind)

    class Named(base):
        def __init__(self, name, maxsize=0):
            super().__init__(maxsize)
            self.name = name

        def put_twice(self, item):
            self.put(item)
            self.put(item)

    q = Named("n", 3)
    q.put_twice(1)
    assert (q.name, q.qsize(), q.unfinished_tasks) == ("n", 2, 2)
    assert q.get_many(5) == [1, 1]


# --- attributes -------------------------------------------------------------------------------


def test_maxsize_is_writable(impl, kind):
    q = getattr(impl, kind)(2)
    q.put_many([1, 2])
    assert q.full()
    q.maxsize = 3
    assert q.maxsize == 3 and not q.full()
    q.put_nowait(3)
    assert q.full()
    with pytest.raises(queue.Full):
        q.put_nowait(4)
    q.maxsize = 1
    assert q.full()
    with pytest.raises(queue.Full):
        q.put_nowait(4)
    q.maxsize = 0
    q.put_many(range(100), block=False)
    assert not q.full() and q.qsize() == 103


def test_unfinished_tasks_and_is_shutdown_attributes(impl, kind):
    q = getattr(impl, kind)()
    assert q.unfinished_tasks == 0 and q.is_shutdown is False
    q.put(1)
    q.put_many([2, 3])
    assert q.unfinished_tasks == 3
    q.get()
    q.task_done()
    assert q.unfinished_tasks == 2
    q.shutdown()
    assert q.is_shutdown is True


def test_mutex_usable_in_with(impl, kind):
    q = getattr(impl, kind)()
    with q.mutex:
        pass
    assert q.mutex.acquire()
    q.mutex.release()
    assert q.mutex.acquire(False)
    q.mutex.release()
    q.put(1)  # the queue still works after the mutex was taken and released
    assert q.get() == 1


def test_queue_view_fifo(impl):
    q = impl.Queue()
    view = q.queue
    q.put_many(["a", "b", "c"])
    assert len(q.queue) == 3
    assert list(q.queue) == ["a", "b", "c"]
    assert q.queue[0] == "a" and q.queue[-1] == "c" and q.queue[1] == "b"
    assert "b" in q.queue
    with pytest.raises(IndexError):
        q.queue[3]
    q.get()
    assert list(view) == ["b", "c"] and len(view) == 2  # a live view, not a snapshot
    assert q.queue[0] == "b"


def test_queue_view_lifo_and_priority(impl):
    q = impl.LifoQueue()
    q.put_many([1, 2, 3])
    assert list(q.queue) == [1, 2, 3]  # bottom to top, as queue.LifoQueue's list
    assert q.queue[-1] == 3 == q.get()
    p = impl.PriorityQueue()
    p.put_many([5, 1, 4, 2, 3])
    assert len(p.queue) == 5
    assert p.queue[0] == 1  # the heap's top: the usual peek
    assert sorted(p.queue) == [1, 2, 3, 4, 5]


def test_queue_view_clear(impl, kind):
    results = []
    for cls in (MODELS[kind], getattr(impl, kind)):
        q = cls(3)
        q.put_many([1, 2, 3])
        q.get()
        q.queue.clear()  # as queue.py: storage emptied, task count untouched
        results.append((q.qsize(), q.empty(), q.full(), len(q.queue), list(q.queue), q.unfinished_tasks))
        q.put(9)
        results.append((q.get_nowait(), outcome(q.get_nowait)))
    assert results[2:] == results[:2]


@pytest.mark.timeout(60)
def test_queue_view_clear_lets_blocked_putter_in_eventually(impl):
    """After clear(), a put with a timeout blocked on a full queue finds room when it retries."""
    q = impl.Queue(1)
    q.put(1)
    q.queue.clear()
    q.put(2, timeout=PROMPT)  # no waiting needed: the queue is empty now
    assert q.get() == 2


# --- the GIL is released while blocked --------------------------------------------------------


def _count_while(blocker, n=1_000_000):
    """Increment a counter n times in Python; return True if the blocked call is still blocked after."""
    counter = 0
    for _ in range(n):
        counter += 1
    assert counter == n
    return blocker.thread.is_alive()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("operation", ["get", "put", "join", "get_many", "put_many", "simple_get"])
def test_gil_released_while_blocked(impl, operation):
    q = impl.SimpleQueue() if operation == "simple_get" else impl.Queue(1)
    wait = 20.0  # the blocked call's own timeout, far longer than the counting takes
    if operation in ("put", "put_many"):
        q.put(0)
    if operation == "join":
        q.put(0)
        q.get()
    call = {
        "get": lambda: q.get(timeout=wait),
        "put": lambda: q.put(1, timeout=wait),
        "join": lambda: q.join(),
        "get_many": lambda: q.get_many(3, timeout=wait),
        "put_many": lambda: q.put_many([1, 2], timeout=wait),
        "simple_get": lambda: q.get(timeout=wait),
    }[operation]
    blocker = Background(call)
    time.sleep(SETTLE)  # if the call keeps the GIL while it waits, we get it back only after `wait`
    start = monotonic()
    still_blocked = _count_while(blocker)
    took = monotonic() - start
    assert still_blocked, "the blocked call returned before the counting thread could run"
    assert took < wait / 2
    _unblock(q, operation)()
    blocker.join(wait)
    assert blocker.error is None, blocker.error


def _unblock(q, operation):
    """A call that ends the blocked `operation` on q for good (put_many needs room for all)."""
    if operation in ("put", "put_many"):
        def unblock():
            q.maxsize = 100  # room for all; the waiter sees it when the get notifies it
            q.get()
        return unblock
    if operation == "join":
        return lambda: q.task_done()
    return lambda: q.put("unblocked")


# --- Ctrl-C interrupts a blocked call in the main thread ---------------------------------------


class _SigintSoon:
    """Send SIGINT to this process after `delay` (from a helper thread), with Python's default handler
    installed; and, as a safety net, unblock the call after `unblock_after` if the signal did not."""

    def __init__(self, delay, unblock, unblock_after=10.0):
        self.delay = delay
        self.unblock = unblock
        self.unblock_after = unblock_after

    def __enter__(self):
        self.old = signal.signal(signal.SIGINT, signal.default_int_handler)
        self.timer = threading.Timer(self.delay, os.kill, (os.getpid(), signal.SIGINT))
        self.net = threading.Timer(self.unblock_after, self.unblock)
        self.timer.start()
        self.net.start()
        return self

    def __exit__(self, *exc):
        self.timer.cancel()
        self.net.cancel()
        self.timer.join()
        self.net.join()
        signal.signal(signal.SIGINT, self.old)
        return False


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or sys.platform == "win32", reason="needs os.kill(SIGINT)")
@pytest.mark.timeout(60, method="thread")
@pytest.mark.parametrize(
    "operation", ["get", "get_timeout", "put", "join", "get_many", "put_many", "simple_get", "simple_get_many"]
)
def test_ctrl_c_interrupts_blocked_call(impl, operation):
    assert threading.current_thread() is threading.main_thread()
    simple = operation.startswith("simple")
    q = impl.SimpleQueue() if simple else impl.Queue(1)
    if operation in ("put", "put_many", "join"):
        q.put(0)
    if operation == "join":
        q.get()
    call = {
        "get": q.get,
        "get_timeout": lambda: q.get(timeout=60),
        "put": lambda: q.put(1),
        "put_many": lambda: q.put_many([1, 2]),
        "join": lambda: q.join(),
        "get_many": lambda: q.get_many(4),
        "simple_get": q.get,
        "simple_get_many": lambda: q.get_many(4),
    }[operation]
    start = monotonic()
    with _SigintSoon(0.3, _unblock(q, operation)):
        with pytest.raises(KeyboardInterrupt):
            call()
    took = monotonic() - start
    assert took < PROMPT, f"KeyboardInterrupt took {took:.1f} s (the safety net, not the signal, ended the wait)"
    # the queue is still usable afterwards, from this thread and from others
    if simple:
        q.put(1)
        assert q.get(timeout=PROMPT) == 1
    else:
        drain(q)
        q.maxsize = 0
        q.put(1)
        assert q.get(timeout=PROMPT) == 1
        getter = Background(q.get, timeout=PROMPT)
        assert getter.blocked(0.05)
        q.put(2)
        assert getter.value() == 2


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
@pytest.mark.timeout(60, method="thread")
@pytest.mark.parametrize("simple", [False, True], ids=["Queue", "SimpleQueue"])
def test_signal_handler_that_returns_does_not_end_the_wait(impl, simple):
    """A handler that does not raise: the wait goes on to its full timeout (PEP 475)."""
    q = impl.SimpleQueue() if simple else impl.Queue()
    calls = []
    old = signal.signal(signal.SIGALRM, lambda signum, frame: calls.append(signum))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)
        took, _ = timed_raises(queue.Empty, q.get, timeout=0.5)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert calls, "the handler never ran"
    assert 0.45 <= took < PROMPT


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
@pytest.mark.timeout(60, method="thread")
@pytest.mark.parametrize("simple", [False, True], ids=["Queue", "SimpleQueue"])
def test_signal_handler_can_put_into_the_queue_being_waited_on(impl, simple):
    q = impl.SimpleQueue() if simple else impl.Queue()
    old = signal.signal(signal.SIGALRM, lambda signum, frame: q.put("from handler"))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        start = monotonic()
        assert q.get(timeout=10) == "from handler"
        assert monotonic() - start < PROMPT
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# --- reference counts -------------------------------------------------------------------------


def test_refcounts_put_get(impl, kind):
    item = object() if kind != "PriorityQueue" else (1, object())
    base = sys.getrefcount(item)
    q = getattr(impl, kind)()
    q.put(item)
    assert sys.getrefcount(item) == base + 1
    q.put(item)
    q.put_many([item, item])
    assert sys.getrefcount(item) == base + 4
    got = q.get()
    assert got is item
    del got
    assert sys.getrefcount(item) == base + 3
    got = q.get_many(10)
    assert sys.getrefcount(item) == base + 3  # now held by the list
    del got
    assert sys.getrefcount(item) == base


def test_refcounts_clear_shutdown_dealloc(impl, kind):
    item = object() if kind != "PriorityQueue" else (1, object())
    base = sys.getrefcount(item)
    q = getattr(impl, kind)()
    q.put_many([item] * 5)
    q.queue.clear()
    assert sys.getrefcount(item) == base
    q.put_many([item] * 5)
    q.shutdown(immediate=True)
    assert sys.getrefcount(item) == base
    q = getattr(impl, kind)()
    q.put_many([item] * 50)  # dealloc with items still queued
    del q
    gc.collect()
    assert sys.getrefcount(item) == base


def test_refcounts_failed_operations(impl, kind):
    item = object() if kind != "PriorityQueue" else (1, object())
    base = sys.getrefcount(item)
    q = getattr(impl, kind)(2)
    q.put_many([item, item])
    with pytest.raises(queue.Full):
        q.put_nowait(item)
    with pytest.raises(queue.Full):
        q.put(item, timeout=0.01)
    with pytest.raises(queue.Full):
        q.put_many([item] * 10, block=False)
    assert sys.getrefcount(item) == base + 2
    q.shutdown()
    with pytest.raises(errors.ShutDown):
        q.put(item)
    assert sys.getrefcount(item) == base + 2
    q.get_many(5)
    assert sys.getrefcount(item) == base


def test_refcounts_view_and_simple_queue(impl):
    item = object()
    base = sys.getrefcount(item)
    q = impl.Queue()
    q.put_many([item] * 3)
    assert q.queue[0] is item
    assert list(q.queue) == [item] * 3
    assert sys.getrefcount(item) == base + 3
    del q
    gc.collect()
    assert sys.getrefcount(item) == base
    s = impl.SimpleQueue()
    s.put(item)
    s.put_many([item] * 3)
    assert sys.getrefcount(item) == base + 4
    s.get()
    assert sys.getrefcount(item) == base + 3
    del s
    gc.collect()
    assert sys.getrefcount(item) == base


def test_items_are_released_when_gotten(impl, kind):
    class Thing:
        def __lt__(self, other):
            return id(self) < id(other)

    q = getattr(impl, kind)()
    refs = []
    for _ in range(20):
        thing = Thing()
        refs.append(weakref.ref(thing))
        q.put(thing)
    del thing
    for _ in range(20):
        q.get()
    gc.collect()
    assert all(r() is None for r in refs)


def test_queue_with_itself_inside_is_collected(impl, kind):
    """A queue holding a reference to itself (a cycle through the ring) is garbage-collected."""
    q = getattr(impl, kind)()
    ref = weakref.ref(q)
    q.put((0, q) if kind == "PriorityQueue" else q)
    del q
    gc.collect()
    assert ref() is None


# --- many threads -----------------------------------------------------------------------------


@pytest.mark.timeout(120)
@pytest.mark.parametrize("maxsize", [0, 16])
@pytest.mark.parametrize("batched", [False, True], ids=["single", "batched"])
def test_many_producers_many_consumers(impl, maxsize, batched):
    producers, consumers, per_producer = 8, 8, 1500
    q = impl.Queue(maxsize)
    received = [[] for _ in range(consumers)]

    def produce(p):
        items = [(p, i) for i in range(per_producer)]
        if batched:
            for k in range(0, per_producer, 7):
                q.put_many(items[k:k + 7])
        else:
            for item in items:
                q.put(item)

    def consume(c):
        out = received[c]
        while True:
            try:
                got = q.get_many(5) if batched else [q.get()]
            except errors.ShutDown:
                return
            for item in got:
                out.append(item)
                q.task_done()

    threads = [threading.Thread(target=consume, args=(c,)) for c in range(consumers)]
    threads += [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    for t in threads:
        t.start()
    for t in threads[consumers:]:
        t.join(90)
    q.join()
    q.shutdown()  # wakes the consumers, all waiting on an empty queue
    for t in threads[:consumers]:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    everything = [item for out in received for item in out]
    assert len(everything) == producers * per_producer
    assert set(everything) == {(p, i) for p in range(producers) for i in range(per_producer)}
    for out in received:  # what one consumer took from one producer came in that producer's order
        for p in range(producers):
            seq = [i for (pp, i) in out if pp == p]
            assert seq == sorted(seq)
    assert q.unfinished_tasks == 0 and q.empty()


@pytest.mark.timeout(120)
def test_many_threads_simple_queue(impl):
    producers, consumers, per_producer = 8, 8, 1500
    q = impl.SimpleQueue()
    received = [[] for _ in range(consumers)]

    def produce(p):
        for i in range(per_producer):
            q.put((p, i))

    def consume(c):
        while True:
            item = q.get()
            if item is None:
                return
            received[c].append(item)

    threads = [threading.Thread(target=consume, args=(c,)) for c in range(consumers)]
    threads += [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    for t in threads:
        t.start()
    for t in threads[consumers:]:
        t.join(90)
    for _ in range(consumers):
        q.put(None)
    for t in threads[:consumers]:
        t.join(30)
    everything = [item for out in received for item in out]
    assert sorted(everything) == sorted((p, i) for p in range(producers) for i in range(per_producer))
    for out in received:
        for p in range(producers):
            seq = [i for (pp, i) in out if pp == p]
            assert seq == sorted(seq)


# --- memory -----------------------------------------------------------------------------------


def _rss_bytes():
    """This process's resident memory, or None where it is unknown or meaningless: under
    AddressSanitizer (tools/sanitize), freed memory sits in a quarantine and RSS only grows."""
    if "asan" in os.environ.get("LD_PRELOAD", "") or os.environ.get("PYTHONMALLOC", "").startswith("malloc"):
        return None
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["Queue", "SimpleQueue"])
def test_put_get_cycles_do_not_grow_memory(impl, name):
    """1M put/get cycles with fresh objects, bursts that grow and
    shrink the ring, and batches: neither Python objects nor the process's memory may grow."""
    cycles = 1_000_000
    q = getattr(impl, name)()
    put, get = q.put, q.get

    def work(n):
        for _ in range(n):
            put(object())
            get()
        for _ in range(20):  # grow to 5000, shrink back
            q.put_many([object() for _ in range(5000)])
            while q.qsize():
                q.get_many(64)

    work(50_000)  # warm up: free lists, arenas, the ring's high-water mark
    gc.collect()
    blocks, rss = sys.getallocatedblocks(), _rss_bytes()
    work(cycles)
    gc.collect()
    grown_blocks = sys.getallocatedblocks() - blocks
    assert grown_blocks < 10_000, f"{grown_blocks} Python memory blocks more after {cycles} cycles"
    if rss is not None:
        grown = _rss_bytes() - rss
        assert grown < 16 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over {cycles} cycles"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["Queue", "LifoQueue", "PriorityQueue"])
def test_shutdown_after_a_put_wakes_every_blocked_getter(impl, kind):
    # Regression: a put's wake and shutdown's wake must not merge into one, leaving a getter asleep.
    for _ in range(50):
        q = getattr(impl, kind)()
        ended = []

        def getter():
            while True:
                try:
                    q.get(timeout=30)
                except impl.ShutDown:
                    ended.append(True)
                    return

        threads = [threading.Thread(target=getter, daemon=True) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.002)
        q.put(1)
        q.shutdown()
        for t in threads:
            t.join(10)
        assert ended == [True] * 3


@pytest.mark.parametrize("name", ["Queue", "LifoQueue", "PriorityQueue", "SimpleQueue"])
def test_pickling_is_refused_alike(impl, name):
    """No queue pickles (its items and waiters live in this process); every C class refuses with
    the same plain message, as the pure ones do with the stdlib's."""
    import pickle

    with pytest.raises(TypeError, match="cannot pickle"):
        pickle.dumps(getattr(impl.module, name)())
