"""ReorderBuffer on both cores: order, wrap-around at 2**32, back-pressure, bad ids, shutdown."""
import random
import sys
import threading
import time

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import fastq


@pytest.fixture
def RB(impl):
    return impl.module.ReorderBuffer


def test_out_of_order_puts_come_out_in_order(RB):
    b = RB(8)
    ids = [b.reserve() for _ in range(8)]
    assert ids == list(range(8))
    for i in random.Random(1).sample(ids, len(ids)):
        b.put(i, f"item{i}")
    assert [b.get() for _ in ids] == [f"item{i}" for i in ids]
    assert b.qsize() == 0 and b.pending == 0


@pytest.mark.parametrize("start", [2**32 - 3, 2**32 - 1, 0])
def test_ids_wrap_modulo_2_32(RB, start):
    b = RB(4, start=start)
    out = []
    for _ in range(5):
        ids = [b.reserve() for _ in range(4)]
        for i in reversed(ids):
            b.put(i, i)
        out += [b.get() for _ in ids]
    assert out == [(start + k) % 2**32 for k in range(20)]
    assert b.next_out == (start + 20) % 2**32


@pytest.mark.parametrize("window", [0, 3, 6, 2**31 + 1, -4])
def test_window_must_be_a_power_of_two(RB, window):
    with pytest.raises(ValueError):
        RB(window)


def test_bad_ids_raise_and_lose_nothing(RB):
    b = RB(4)
    a, c = b.reserve(), b.reserve()
    b.put(a, "a")
    with pytest.raises(ValueError):
        b.put(a, "again")  # duplicate
    with pytest.raises(ValueError):
        b.put(c + 1, "never reserved")
    assert b.get() == "a"
    with pytest.raises(ValueError):
        b.put(a, "late")
    b.put(c, "c")
    assert b.get() == "c"
    with pytest.raises((OverflowError, TypeError)):
        b.put(-1, "x")


def test_reserve_applies_back_pressure(RB, impl):
    b = RB(2)
    b.reserve(), b.reserve()
    with pytest.raises(impl.Full):
        b.reserve(block=False)
    t0 = time.monotonic()
    with pytest.raises(impl.Full):
        b.reserve(timeout=0.05)
    assert time.monotonic() - t0 >= 0.04
    with pytest.raises(ValueError):
        b.reserve(timeout=-1)
    got = []
    t = threading.Thread(target=lambda: got.append(b.reserve(timeout=10)))
    t.start()
    time.sleep(0.05)
    assert not got
    b.put(0, "x")
    assert b.get() == "x"
    t.join(10)
    assert got == [2]


def test_get_waits_with_the_gil_released(RB, impl):
    b = RB(4)
    i = b.reserve()
    with pytest.raises(impl.Empty):
        b.get(block=False)
    with pytest.raises(impl.Empty):
        b.get(timeout=0.02)
    counter = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            counter[0] += 1

    def late_put():
        time.sleep(0.2)
        b.put(i, "late")

    threads = [threading.Thread(target=spin), threading.Thread(target=late_put)]
    for t in threads:
        t.start()
    try:
        assert b.get(timeout=10) == "late"
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert counter[0] > 1000  # Python code ran in another thread while get() waited


def test_shutdown_drains_reserved_ids_then_raises(RB, impl):
    b = RB(4)
    a, c = b.reserve(), b.reserve()
    b.shutdown()
    assert b.is_shutdown
    with pytest.raises(impl.ShutDown):
        b.reserve()
    b.put(c, "c")
    result = []
    t = threading.Thread(target=lambda: result.append([b.get(timeout=10), b.get(timeout=10)]))
    t.start()
    time.sleep(0.05)
    b.put(a, "a")
    t.join(10)
    assert result == [["a", "c"]]
    with pytest.raises(impl.ShutDown):
        b.get()


def test_shutdown_wakes_blocked_callers(RB, impl):
    b = RB(1)
    b.reserve()
    b.put(0, "x")
    assert b.get() == "x"
    b.reserve()  # window full again
    errors = []

    def call(f):
        try:
            f()
        except impl.ShutDown:
            errors.append(f.__name__)

    def get_after_drain():
        b.get(timeout=10)
        b.get(timeout=10)

    ts = [threading.Thread(target=call, args=(b.reserve,))]
    for t in ts:
        t.start()
    time.sleep(0.05)
    b.shutdown()
    for t in ts:
        t.join(10)
    assert errors == ["reserve"]


def test_threads_fill_in_random_order(RB):
    b = RB(16)
    n = 2000
    work = fastq.pure.Queue()

    def worker():
        rnd = random.Random()
        while (i := work.get()) is not None:
            if rnd.random() < 0.1:
                time.sleep(0.0005)
            b.put(i, i * 2)

    workers = [threading.Thread(target=worker) for _ in range(4)]
    for t in workers:
        t.start()

    def feed():
        for _ in range(n):
            work.put(b.reserve(timeout=10))
        for _ in workers:
            work.put(None)

    feeder = threading.Thread(target=feed)
    feeder.start()
    assert [b.get(timeout=10) for _ in range(n)] == [2 * k for k in range(n)]
    feeder.join()
    for t in workers:
        t.join()


def test_references_are_released(RB):
    b = RB(4)
    obj = object()
    before = sys.getrefcount(obj)
    ids = [b.reserve() for _ in range(3)]
    for i in ids:
        b.put(i, obj)
    assert sys.getrefcount(obj) == before + 3
    b.get()
    assert sys.getrefcount(obj) == before + 2
    del b
    assert sys.getrefcount(obj) == before


class ReorderModel(RuleBasedStateMachine):
    """A ReorderBuffer against a dict model, with ids starting near 2**32."""

    impl_cls = None

    def __init__(self):
        super().__init__()
        self.start = 2**32 - 5
        self.b = self.impl_cls(8, start=self.start)
        self.reserved = []  # absolute (unwrapped) ids, in order
        self.filled = {}
        self.next_out = self.start

    @rule()
    def reserve(self):
        if len(self.reserved) - (self.next_out - self.start) >= 8:
            with pytest.raises(fastq.Full):
                self.b.reserve(block=False)
        else:
            i = self.b.reserve(block=False)
            absolute = self.start + len(self.reserved)
            assert i == absolute % 2**32
            self.reserved.append(absolute)

    @precondition(lambda self: any(i >= self.next_out and i not in self.filled for i in self.reserved))
    @rule(data=st.data())
    def put(self, data):
        choices = [i for i in self.reserved if i >= self.next_out and i not in self.filled]
        i = data.draw(st.sampled_from(choices))
        self.b.put(i % 2**32, i)
        self.filled[i] = i

    @rule(offset=st.integers(0, 20))
    def put_bad(self, offset):
        i = self.next_out - 3 + offset
        if i in self.filled or i >= self.start + len(self.reserved) or i < self.next_out:
            with pytest.raises(ValueError):
                self.b.put(i % 2**32, "bad")

    @rule()
    def get(self):
        if self.next_out in self.filled:
            assert self.b.get(block=False) == self.next_out
            del self.filled[self.next_out]
            self.next_out += 1
        else:
            with pytest.raises(fastq.Empty):
                self.b.get(block=False)

    @invariant()
    def counts(self):
        assert self.b.qsize() == len(self.filled)
        assert self.b.pending == self.start + len(self.reserved) - self.next_out
        assert self.b.next_out == self.next_out % 2**32


def test_stateful_against_a_dict_model(RB):
    machine = type("Machine", (ReorderModel,), {"impl_cls": RB})
    machine.TestCase.settings = settings(max_examples=60, stateful_step_count=60, deadline=None)
    machine.TestCase().runTest()


def test_an_unknown_packet_id_is_refused_in_a_sentence(RB):
    buf = RB(4)
    with pytest.raises(ValueError, match=r"^packet id 7 was not handed out by reserve\(\), or was delivered "
                                         r"already; no id is reserved now$"):
        buf.put(7, "x")
    first, second = buf.reserve(), buf.reserve()
    with pytest.raises(ValueError, match=r"the reserved, undelivered ids are 0 to 1 \(modulo 2\*\*32\)$"):
        buf.put(second + 1, "x")
    buf.put(first, "a")
    with pytest.raises(ValueError, match=r"^packet id 0 was already put$"):
        buf.put(first, "b")
