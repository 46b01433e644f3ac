"""Hypothesis state machines, single process, on both cores:

- ProcessQueue against a list model: maxsize (0: unbounded, with a ring small enough that items
  wait in the backlog for the feeder thread), put/get (nowait, timeout=0), put_many/get_many with
  the inserted prefix on Full, qsize/empty/full, task_done/join(timeout=0), shutdown (immediate or
  not), close; items of every kind the ring treats differently (pickled scalars, bytes and
  bytearray on the raw path, nested objects, items larger than a quarter of the ring: spill segments).
- IterableQueue: producers made, putting and closing, close(), a consumer's get/get_many
  (non-blocking), Done exactly when the IterableQueue is closed, every producer closed and the
  queue drained.
- ReorderBuffer (beside tests/test_reorder.py's dict model): any power-of-two window, a start
  anywhere (near 2**32: ids wrap), shutdown, reserve/get with timeout=0.
"""
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import fastq
from fastq import Closed, Done, Empty, Full, ShutDown

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

SETTINGS = settings(max_examples=60, stateful_step_count=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

BIG = bytes(range(256)) * 80  # 20 KiB: more than a quarter of a 64 KiB ring (a spill segment)


def big(kind):
    """A spill-sized item (built here, so that hypothesis shows the kind, not 20 KiB of repr)."""
    return {"bytes": BIG, "bytearray": bytearray(BIG), "tuple": ("big", BIG)}[kind]


def take_many(get_many, n, expected):
    """get_many until it has given `expected` items, each call a non-empty batch of at most what was
    asked: it waits only for the first item and then takes what is there, which on the pure core (a
    pipe and a feeder thread) may be fewer than are queued. Keeps the model deterministic."""
    got = []
    while len(got) < expected:
        batch = get_many(n - len(got))
        assert 1 <= len(batch) <= n - len(got), batch
        got += batch
    return got


values = st.one_of(
    st.integers(-(2**70), 2**70),
    st.text(max_size=8),
    st.binary(max_size=64),
    st.binary(max_size=64).map(bytearray),
    st.tuples(st.integers(0, 9), st.text(max_size=3)),
    st.just(None),
    st.sampled_from(["bytes", "bytearray", "tuple"]).map(big),
)


def same(a, b):
    return type(a) is type(b) and a == b


def _process_queue(impl):
    cls = getattr(impl.module, "ProcessQueue", None)
    if cls is None:
        pytest.skip("no ProcessQueue in this build")
    return cls


# ---- ProcessQueue ------------------------------------------------------------------------------------


class ProcessQueueMachine(RuleBasedStateMachine):
    cls = None

    @initialize(maxsize=st.sampled_from([0, 0, 1, 3, 8]), small_ring=st.booleans())
    def make(self, maxsize, small_ring):
        # an unbounded queue on a 4 KiB ring: puts overflow into the backlog (the feeder thread)
        capacity = 4096 if (small_ring and maxsize == 0) else 64 << 10
        self.q = self.cls(maxsize, capacity=capacity)
        self.maxsize = maxsize
        self.model = []
        self.puts = 0  # items ever accepted
        self.dones = 0  # task_done calls + items discarded by shutdown(immediate=True)
        self.shut = False
        self.closed = False

    def teardown(self):
        q = getattr(self, "q", None)
        if q is not None:
            q.shutdown(immediate=True)  # discards what is queued: spill segments included
            q.cancel_join_thread()
            q.close()

    def _room(self):
        return self.maxsize - len(self.model) if self.maxsize > 0 else None

    @rule(item=values, how=st.sampled_from(["nowait", "timeout0", "block"]))
    def put(self, item, how):
        full = self._room() == 0
        if how == "block" and full and not (self.shut or self.closed):
            return  # would block forever
        call = {"nowait": lambda: self.q.put_nowait(item), "timeout0": lambda: self.q.put(item, timeout=0),
                "block": lambda: self.q.put(item)}[how]
        if self.closed:
            with pytest.raises(ValueError):
                call()
        elif self.shut:
            with pytest.raises(ShutDown):
                call()
        elif full:
            with pytest.raises(Full):
                call()
        else:
            call()
            self.model.append(item)
            self.puts += 1

    @rule(items=st.lists(values, max_size=5))
    def put_many(self, items):
        if self.closed:
            with pytest.raises(ValueError):
                self.q.put_many(items, block=False)
            return
        room = self._room()
        fits = len(items) if room is None else min(room, len(items))
        if self.shut and items:
            with pytest.raises(ShutDown) as info:
                self.q.put_many(items, block=False)
            assert info.value.inserted == 0
            return
        if fits < len(items):
            with pytest.raises(Full) as info:
                self.q.put_many(items, block=False)
            assert info.value.inserted == fits
        else:
            self.q.put_many(items, block=False)
        self.model += items[:fits]
        self.puts += fits

    def _expect_get(self, call, n=1):
        if self.closed:
            with pytest.raises(ValueError):
                call()
        elif not self.model:
            with pytest.raises(ShutDown if self.shut else Empty):
                call()
        else:
            if n is None:
                got, n = [call()], 1
            else:
                got = take_many(call, n, min(n, len(self.model)))
            want, self.model = self.model[:n], self.model[n:]
            assert len(got) == len(want) and all(same(a, b) for a, b in zip(got, want)), (got, want)

    @rule(how=st.sampled_from(["nowait", "timeout0"]))
    def get(self, how):
        call = self.q.get_nowait if how == "nowait" else (lambda: self.q.get(timeout=0))
        self._expect_get(call, None)

    @precondition(lambda self: self.model and not self.closed)
    @rule()
    def get_blocking(self):
        self._expect_get(lambda: self.q.get(timeout=10), None)

    @rule(n=st.integers(1, 6))
    def get_many(self, n):
        self._expect_get(lambda k=n: self.q.get_many(k, block=False), n)

    @rule()
    def task_done(self):
        if self.dones >= self.puts:
            with pytest.raises(ValueError):
                self.q.task_done()
        else:
            self.q.task_done()
            self.dones += 1

    @rule()
    def join_now(self):
        assert self.q.join(timeout=0) is (self.puts == self.dones)

    @rule(immediate=st.booleans())
    def shutdown(self, immediate):
        if self.closed:
            return
        self.q.shutdown(immediate=immediate)
        self.shut = True
        if immediate:  # discarded items count as done, never below zero unfinished (queue.py)
            self.dones = min(self.puts, self.dones + len(self.model))
            self.model = []

    @precondition(lambda self: not self.closed)
    @rule()
    def close(self):
        self.q.close()
        self.q.join_thread()
        self.closed = True

    @invariant()
    def sizes(self):
        if not hasattr(self, "q"):
            return
        assert self.q.qsize() == len(self.model)
        assert self.q.empty() is (not self.model)
        assert self.q.full() is (self.maxsize > 0 and len(self.model) >= self.maxsize)
        assert self.q.maxsize == self.maxsize
        assert self.q.is_shutdown is self.shut


def test_process_queue_against_a_list_model(impl):
    machine = type("Machine", (ProcessQueueMachine,), {"cls": _process_queue(impl)})
    machine.TestCase.settings = SETTINGS
    machine.TestCase().runTest()


# ---- IterableQueue -----------------------------------------------------------------------------------


class IterableQueueMachine(RuleBasedStateMachine):
    cls = None

    @initialize(maxsize=st.sampled_from([0, 2, 5]))
    def make(self, maxsize):
        self.iq = self.cls(maxsize)
        self.maxsize = maxsize
        self.consumer = self.iq.get_consumer()
        self.producers = []  # [endpoint, open?]
        self.model = []
        self.closed = False

    def teardown(self):
        iq = getattr(self, "iq", None)
        if iq is not None:
            iq._queue.shutdown(immediate=True)  # discards what is queued: spill segments included
            iq._queue.cancel_join_thread()
            iq._queue.close()

    def _finished(self):
        return self.closed and not any(open_ for _, open_ in self.producers) and not self.model

    @rule()
    def new_producer(self):
        if self.closed:
            with pytest.raises(Closed):
                self.iq.get_producer()
        else:
            self.producers.append([self.iq.get_producer(), True])

    @precondition(lambda self: self.producers)
    @rule(data=st.data(), item=values)
    def producer_put(self, data, item):
        entry = data.draw(st.sampled_from(self.producers))
        p, open_ = entry
        if not open_:
            with pytest.raises(Closed):
                p.put(item, block=False)
        elif self.maxsize and len(self.model) >= self.maxsize:
            with pytest.raises(Full):
                p.put(item, block=False)
        else:
            p.put(item, block=False)
            self.model.append(item)

    @precondition(lambda self: self.producers)
    @rule(data=st.data(), items=st.lists(values, max_size=3))
    def producer_put_many(self, data, items):
        entry = data.draw(st.sampled_from(self.producers))
        p, open_ = entry
        if not open_:
            with pytest.raises(Closed):
                p.put_many(items, block=False)
            return
        room = len(items) if not self.maxsize else max(0, min(len(items), self.maxsize - len(self.model)))
        if room < len(items):
            with pytest.raises(Full) as info:
                p.put_many(items, block=False)
            assert info.value.inserted == room
        else:
            p.put_many(items, block=False)
        self.model += items[:room]

    @precondition(lambda self: self.producers)
    @rule(data=st.data())
    def producer_close(self, data):
        entry = data.draw(st.sampled_from(self.producers))
        entry[0].close()  # closing twice is fine
        entry[1] = False

    @rule()
    def close(self):
        self.iq.close()
        self.closed = True

    @rule(how=st.sampled_from(["nowait", "timeout0"]))
    def get(self, how):
        call = (lambda: self.consumer.get(block=False)) if how == "nowait" else (lambda: self.consumer.get(timeout=0))
        if self.model:
            assert same(call(), self.model.pop(0))
        else:
            with pytest.raises(Done if self._finished() else Empty):
                call()

    @rule(n=st.integers(1, 4))
    def get_many(self, n):
        if self.model:
            got = take_many(lambda k: self.consumer.get_many(k, block=False), n, min(n, len(self.model)))
            want, self.model = self.model[:n], self.model[n:]
            assert len(got) == len(want) and all(same(a, b) for a, b in zip(got, want))
        else:
            with pytest.raises(Done if self._finished() else Empty):
                self.consumer.get_many(n, block=False)

    @precondition(lambda self: self._finished())
    @rule()
    def iterate_to_the_end(self):
        assert list(self.consumer) == []

    @invariant()
    def size(self):
        if hasattr(self, "iq"):
            assert self.iq.qsize() == len(self.model)


def test_iterable_queue_against_a_model(impl):
    machine = type("Machine", (IterableQueueMachine,), {"cls": impl.process_api.IterableQueue})
    machine.TestCase.settings = SETTINGS
    machine.TestCase().runTest()


# ---- ReorderBuffer -----------------------------------------------------------------------------------


class ReorderMachine(RuleBasedStateMachine):
    """Ids in the model are absolute (unwrapped) integers; the buffer sees them mod 2**32."""

    cls = None

    @initialize(log_window=st.integers(0, 4), start=st.one_of(st.integers(0, 2**32 - 1),
                                                              st.integers(2**32 - 20, 2**32 - 1)))
    def make(self, log_window, start):
        self.window = 1 << log_window
        self.b = self.cls(self.window, start=start)
        self.start = self.next_id = self.next_out = start
        self.filled = {}
        self.shut = False

    def _pending(self):
        return self.next_id - self.next_out

    @rule(how=st.sampled_from(["nowait", "timeout0"]))
    def reserve(self, how):
        call = (lambda: self.b.reserve(block=False)) if how == "nowait" else (lambda: self.b.reserve(timeout=0))
        if self.shut:
            with pytest.raises(ShutDown):
                call()
        elif self._pending() >= self.window:
            with pytest.raises(Full):
                call()
        else:
            assert call() == self.next_id % 2**32
            self.next_id += 1

    @precondition(lambda self: any(i not in self.filled for i in range(self.next_out, self.next_id)))
    @rule(data=st.data(), item=st.integers())
    def put(self, data, item):
        i = data.draw(st.sampled_from([i for i in range(self.next_out, self.next_id) if i not in self.filled]))
        self.b.put(i % 2**32, (i, item))
        self.filled[i] = (i, item)

    @rule(offset=st.integers(-3, 20))
    def put_bad(self, offset):
        i = self.next_out + offset
        if i < self.next_out or i >= self.next_id or i in self.filled:
            with pytest.raises(ValueError):
                self.b.put(i % 2**32, "bad")

    @rule(how=st.sampled_from(["nowait", "timeout0"]))
    def get(self, how):
        call = (lambda: self.b.get(block=False)) if how == "nowait" else (lambda: self.b.get(timeout=0))
        if self.next_out in self.filled:
            assert call() == self.filled.pop(self.next_out)
            self.next_out += 1
        else:
            with pytest.raises(ShutDown if self.shut and not self._pending() else Empty):
                call()

    @rule()
    def shutdown(self):
        self.b.shutdown()
        self.shut = True

    @invariant()
    def counts(self):
        if not hasattr(self, "b"):
            return
        assert self.b.qsize() == len(self.filled)
        assert self.b.pending == self._pending()
        assert self.b.next_out == self.next_out % 2**32
        assert self.b.next_id == self.next_id % 2**32
        assert self.b.is_shutdown is self.shut


def test_reorder_buffer_against_a_model_with_shutdown_and_any_window(impl):
    machine = type("Machine", (ReorderMachine,), {"cls": impl.module.ReorderBuffer})
    machine.TestCase.settings = SETTINGS
    machine.TestCase().runTest()
