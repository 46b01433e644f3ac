"""Property tests of Queue/LifoQueue/PriorityQueue on both cores.

In one thread: a hypothesis state machine drives random operations on a fastq queue and on the
standard library's queue class (the model: tests/queue_model.py) and requires the same results,
and exceptions of the same type. With threads: invariants only (nothing lost or duplicated; FIFO
keeps each producer's order).
"""
import queue
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from queue_model import HAS_STDLIB_SHUTDOWN, MODELS, model_class

KINDS = ("Queue", "LifoQueue", "PriorityQueue")

items = st.integers(0, 20)
# None only where the model says the call will not block (see _never_blocks); 0.001 waits 1 ms.
timeouts = st.sampled_from([None, 0, 0.0, 0.001, -1, -0.5])

STATE_MACHINE_SETTINGS = settings(
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def hooked(base):
    """A subclass overriding the hooks (and calling the base's): the C core's queue.py path."""

    class Hooked(base):
        def _init(self, maxsize):
            super()._init(maxsize)
            self.puts = 0

        def _put(self, item):
            self.puts += 1
            super()._put(item)

        def _get(self):
            return super()._get()

    return Hooked


def outcome(fn, *args):
    """('ok', result) or ('raise', exception type[, inserted]): exceptions compare by type."""
    try:
        return ("ok", fn(*args))
    except Exception as exc:
        if hasattr(exc, "inserted"):
            return ("raise", type(exc), exc.inserted)
        return ("raise", type(exc))


def make_machine(fastq_cls, model_cls, kind):
    class QueueMachine(RuleBasedStateMachine):
        """The same operations on fastq's queue and on the model, the same results."""

        @initialize(maxsize=st.integers(-1, 6))
        def create(self, maxsize):
            self.q = fastq_cls(maxsize)
            self.model = model_cls(maxsize)

        def _same(self, name, *args):
            expected = outcome(getattr(self.model, name), *args)
            actual = outcome(getattr(self.q, name), *args)
            assert actual == expected, (name, args)
            return actual

        def _shut(self):
            return getattr(self.model, "is_shutdown", False)

        def _room(self):
            m = self.model
            return float("inf") if m.maxsize <= 0 else m.maxsize - m.qsize()

        def _never_blocks(self, block, timeout, wants_items=0, wants_room=0):
            """Replace an endless wait (block, no timeout) the model would sit in by timeout=0."""
            if not block or timeout is not None or self._shut():
                return timeout
            if wants_items and self.model.qsize() == 0:
                return 0
            if wants_room and self._room() < wants_room:
                return 0
            return timeout

        @rule(item=items, block=st.booleans(), timeout=timeouts)
        def put(self, item, block, timeout):
            timeout = self._never_blocks(block, timeout, wants_room=1)
            self._same("put", item, block, timeout)

        @rule(item=items)
        def put_nowait(self, item):
            self._same("put_nowait", item)

        @rule(block=st.booleans(), timeout=timeouts)
        def get(self, block, timeout):
            timeout = self._never_blocks(block, timeout, wants_items=1)
            self._same("get", block, timeout)

        @rule()
        def get_nowait(self):
            self._same("get_nowait")

        @rule(batch=st.lists(items, max_size=6), block=st.booleans(), timeout=timeouts)
        def put_many(self, batch, block, timeout):
            timeout = self._never_blocks(block, timeout, wants_room=len(batch))
            self._same("put_many", batch, block, timeout)

        @rule(max_items=st.integers(-1, 8), block=st.booleans(), timeout=timeouts)
        def get_many(self, max_items, block, timeout):
            timeout = self._never_blocks(block, timeout, wants_items=1)
            self._same("get_many", max_items, block, timeout)

        @rule()
        def task_done(self):
            self._same("task_done")

        @rule()
        def sizes(self):
            self._same("qsize")
            self._same("empty")
            self._same("full")

        @rule(maxsize=st.integers(-1, 6))
        def set_maxsize(self, maxsize):
            self.q.maxsize = maxsize
            self.model.maxsize = maxsize

        if HAS_STDLIB_SHUTDOWN:

            @rule(immediate=st.booleans())
            def shutdown(self, immediate):
                self._same("shutdown", immediate)

        @invariant()
        def same_state(self):
            if not hasattr(self, "q"):
                return
            assert self.q.qsize() == self.model.qsize()
            assert self.q.unfinished_tasks == self.model.unfinished_tasks
            assert self.q.maxsize == self.model.maxsize
            assert bool(getattr(self.q, "is_shutdown", False)) == self._shut()
            contents, expected = list(self.q.queue), list(self.model.queue)
            if kind == "PriorityQueue":  # the heap's layout is the core's business; its top is not
                assert sorted(contents) == sorted(expected)
                assert contents[:1] == expected[:1]
            else:
                assert contents == expected

    QueueMachine.__name__ = f"{fastq_cls.__name__}Machine"
    return QueueMachine


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("with_hooks", [False, True], ids=["plain", "hooked"])
def test_state_machine_against_stdlib(impl, kind, with_hooks):
    fastq_cls, model_cls = getattr(impl, kind), MODELS[kind]
    if with_hooks:
        fastq_cls, model_cls = hooked(fastq_cls), model_class(hooked(getattr(queue, kind)))
    run_state_machine_as_test(make_machine(fastq_cls, model_cls, kind), settings=STATE_MACHINE_SETTINGS)


# --- threads: invariants ----------------------------------------------------------------------


def _run_threads(q, producers, consumers, per_producer, batched):
    stop = threading.Event()
    received = [[] for _ in range(consumers)]
    errors_seen = []

    def produce(p):
        try:
            mine = [(p, i) for i in range(per_producer)]
            k = 0
            while k < len(mine):
                if batched:
                    try:
                        q.put_many(mine[k:k + 5], timeout=0.005)
                        k += len(mine[k:k + 5])
                    except queue.Full as exc:
                        k += exc.inserted  # the prefix went in: resend only the rest
                else:
                    try:
                        q.put(mine[k], timeout=0.005)
                        k += 1
                    except queue.Full:
                        pass
        except BaseException as exc:  # noqa: B902
            errors_seen.append(exc)

    def consume(c):
        try:
            while True:
                try:
                    got = q.get_many(3, timeout=0.005) if batched else [q.get(timeout=0.005)]
                except queue.Empty:
                    if stop.is_set():
                        return
                    continue
                received[c].extend(got)
                for _ in got:
                    q.task_done()
        except BaseException as exc:  # noqa: B902
            errors_seen.append(exc)

    threads = [threading.Thread(target=consume, args=(c,), daemon=True) for c in range(consumers)]
    threads += [threading.Thread(target=produce, args=(p,), daemon=True) for p in range(producers)]
    for t in threads:
        t.start()
    for t in threads[consumers:]:
        t.join(30)
    joiner = threading.Thread(target=q.join, daemon=True)
    joiner.start()
    joiner.join(30)
    assert not joiner.is_alive(), "join() did not return after every item was processed"
    stop.set()
    for t in threads[:consumers]:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "a thread is stuck"
    assert not errors_seen, errors_seen
    return received


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", KINDS)
def test_threads_lose_and_duplicate_nothing(impl, kind):
    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        producers=st.integers(1, 4),
        consumers=st.integers(1, 4),
        per_producer=st.integers(0, 60),
        maxsize=st.integers(0, 6),
        batched=st.booleans(),
    )
    def check(producers, consumers, per_producer, maxsize, batched):
        q = getattr(impl, kind)(maxsize)
        received = _run_threads(q, producers, consumers, per_producer, batched)
        everything = [item for out in received for item in out]
        assert sorted(everything) == [(p, i) for p in range(producers) for i in range(per_producer)]
        if kind == "Queue":  # FIFO: what one consumer took from one producer is in that producer's order
            for out in received:
                for p in range(producers):
                    seq = [i for (pp, i) in out if pp == p]
                    assert seq == sorted(seq)
        assert q.unfinished_tasks == 0 and q.qsize() == 0

    check()


@pytest.mark.timeout(300)
def test_threads_simple_queue(impl):
    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(producers=st.integers(1, 4), consumers=st.integers(1, 4), per_producer=st.integers(0, 60))
    def check(producers, consumers, per_producer):
        q = impl.SimpleQueue()
        stop = threading.Event()
        received = [[] for _ in range(consumers)]

        def produce(p):
            for k in range(0, per_producer, 4):
                q.put_many([(p, i) for i in range(k, min(k + 4, per_producer))])

        def consume(c):
            while True:
                try:
                    received[c].extend(q.get_many(3, timeout=0.005))
                except queue.Empty:
                    if stop.is_set() and q.empty():
                        return

        threads = [threading.Thread(target=consume, args=(c,), daemon=True) for c in range(consumers)]
        threads += [threading.Thread(target=produce, args=(p,), daemon=True) for p in range(producers)]
        for t in threads:
            t.start()
        for t in threads[consumers:]:
            t.join(30)
        stop.set()
        for t in threads[:consumers]:
            t.join(30)
        assert not any(t.is_alive() for t in threads)
        everything = [item for out in received for item in out]
        assert sorted(everything) == [(p, i) for p in range(producers) for i in range(per_producer)]
        for out in received:
            for p in range(producers):
                seq = [i for (pp, i) in out if pp == p]
                assert seq == sorted(seq)

    check()

