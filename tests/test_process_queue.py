"""ProcessQueue on both cores: the drop-in behaviour of multiprocessing.Queue/JoinableQueue across
processes (fork, spawn, forkserver), fastq's extras (shutdown, put_many/get_many, join(timeout)),
errors at the call that caused them, big payloads, hygiene (no leaked fd, mapping, thread or /dev/shm
entry) and, on the C core only, crash tolerance: SIGKILLed producers and consumers in a loop, and
scribbled segments giving QueueCorrupted.

Every wait on another process is bounded (WAIT seconds), and every test has a pytest-timeout, so a
bug shows up as a failure, never as a hung run. Child processes are module-level functions (spawn
and forkserver import this module in the child) that report through their exit code or a queue.
"""
import gc
import hashlib
import multiprocessing as mp
import os
import pickle
import random
import signal
import struct
import sys
import threading
import time
import zlib
from collections import deque

import pytest

from fastq import Empty, Full, QueueCorrupted, ShutDown

pytestmark = pytest.mark.timeout(120)

WAIT = 60.0  # generous bound on every wait for another process
LINUX = sys.platform.startswith("linux")
START_METHODS = [m for m in ("fork", "forkserver", "spawn") if m in mp.get_all_start_methods()]
FAST_METHOD = "fork" if "fork" in START_METHODS else "spawn"
MiB = 1 << 20
KiB = 1 << 10
CRASH_SKIP = "crash tolerance is the C core's promise (docs/design/ARCHITECTURE.md)"
PICKLE_REFUSED = "should only be shared between processes through inheritance"


# --- fixtures -------------------------------------------------------------------------------------


def _process_queue_class(impl):
    cls = getattr(impl.module, "ProcessQueue", None)
    if cls is None:
        pytest.skip(f"{impl.module.__name__} has no ProcessQueue yet (the C ProcessQueue is not built)")
    return cls


class Harness:
    """Makes queues and child processes for one test, and cleans up after it: children still alive
    are killed, queues are closed without waiting for their feeder threads."""

    def __init__(self, cls):
        self.cls = cls
        self.queues = []
        self.procs = []

    def queue(self, *args, **kwargs):
        q = self.cls(*args, **kwargs)
        self.queues.append(q)
        return q

    def start(self, target, *args, method=FAST_METHOD):
        p = mp.get_context(method).Process(target=target, args=args, daemon=True)
        p.start()
        self.procs.append(p)
        return p

    def finish(self, *procs, timeout=WAIT):
        """Join the children (bounded) and require a clean exit."""
        deadline = time.monotonic() + timeout
        for p in procs:
            p.join(max(deadline - time.monotonic(), 0.0))
            assert not p.is_alive(), f"child {p.name} still running after {timeout}s (hang)"
            assert p.exitcode == 0, f"child {p.name} exited with {p.exitcode}"

    def close(self):
        for p in self.procs:
            if p.is_alive():
                p.kill()
            p.join(WAIT)
        for q in self.queues:
            q.cancel_join_thread()
            q.close()


@pytest.fixture
def PQ(impl):
    """The ProcessQueue class of the core under test."""
    return _process_queue_class(impl)


@pytest.fixture
def h(PQ):
    harness = Harness(PQ)
    yield harness
    harness.close()


@pytest.fixture
def crash_h(impl):
    """A Harness for the fault tests, which run on the C core only."""
    if impl.is_pure_python:
        pytest.skip(CRASH_SKIP)
    if not LINUX:
        pytest.skip("the C ProcessQueue is Linux first")
    harness = Harness(_process_queue_class(impl))
    yield harness
    harness.close()


def _until(predicate, timeout=WAIT, step=0.005):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


# --- child processes --------------------------------------------------------------------------------


def _put_range(q, start, n):
    for i in range(start, start + n):
        q.put(i)


def _put_after(q, delay, item):
    time.sleep(delay)
    q.put(item)


def _get_after(q, delay, expected):
    time.sleep(delay)
    sys.exit(0 if q.get(timeout=WAIT) == expected else 3)


def _echo(q_in, q_out, n):
    """Get n items, task_done each, and put them back on q_out."""
    for _ in range(n):
        item = q_in.get(timeout=WAIT)
        q_out.put(item)
        q_in.task_done()


def _task_worker(q):
    """Get until None, calling task_done() for every item (None included)."""
    while True:
        item = q.get(timeout=WAIT)
        q.task_done()
        if item is None:
            return


def _join_in_child(q, ready):
    ready.set()
    sys.exit(0 if q.join(timeout=WAIT) is True else 3)


def _blocked_get_expects_shutdown(q, ready):
    ready.set()
    try:
        q.get()
    except ShutDown:
        sys.exit(0)
    sys.exit(3)


def _blocked_put_expects_shutdown(q, ready):
    ready.set()
    try:
        q.put("more")
    except ShutDown:
        sys.exit(0)
    sys.exit(3)


def _drain_after_shutdown(q, n):
    """The queue was shut down (not immediately) holding n items: get them, then ShutDown everywhere."""
    got = [q.get(timeout=WAIT) for _ in range(n)]
    assert got == list(range(n)), got
    for call in (q.get, q.get_nowait, lambda: q.get(timeout=0.1), lambda: q.put(0), lambda: q.put_many([0])):
        try:
            call()
        except ShutDown:
            continue
        sys.exit(3)


def _shutdown_immediate(q):
    q.shutdown(immediate=True)


def _mpmc_producer(q, idx, n):
    for seq in range(n):
        q.put((idx, seq))


def _mpmc_consumer(q, results):
    got = []
    while True:
        item = q.get(timeout=WAIT)
        if item is None:
            break
        got.append(item)
    results.put(got)


def _big_bytes_producer(q, size, seed):
    data = random.Random(seed).randbytes(size)
    q.put(data)
    q.put(hashlib.sha256(data).hexdigest())


def _digest_echo(q_in, q_out, n):
    """Get n items and put back (type name, sha256 of the raw bytes)."""
    for _ in range(n):
        item = q_in.get(timeout=WAIT)
        q_out.put((type(item).__name__, hashlib.sha256(memoryview(item).cast("B")).hexdigest()))


def _array_echo(q_in, q_out, n):
    """Get n numpy arrays and put each back with its own checksum, computed here."""
    for _ in range(n):
        a = q_in.get(timeout=WAIT)
        q_out.put((a, zlib.crc32(a.tobytes())))


def _put_many_range(q, n, batch):
    for start in range(0, n, batch):
        q.put_many(range(start, min(start + batch, n)))


# --- basics in one process -----------------------------------------------------------------------------


class MyBytes(bytes):
    pass


def test_fifo_order(h):
    q = h.queue()
    for i in range(1000):
        q.put(i)
    assert [q.get(timeout=WAIT) for _ in range(1000)] == list(range(1000))


def test_items_round_trip_with_their_types(h):
    q = h.queue()
    items = [None, 0, -1, 2**100, 1.5, "s", "ü" * 1000, b"", b"x" * 100, bytearray(b"abc"), bytearray(),
             MyBytes(b"sub"), (1, (2, 3)), [1, [2]], {"a": 1}, {1, 2}, frozenset({3}), range(3)]
    for item in items:
        q.put(item)
    for item in items:
        got = q.get(timeout=WAIT)
        assert type(got) is type(item) and got == item


def test_nonblocking_calls_and_timeouts(h):
    q = h.queue()
    with pytest.raises(Empty):
        q.get_nowait()
    with pytest.raises(Empty):
        q.get(block=False)
    with pytest.raises(Empty):
        q.get(False, 5)  # the timeout is ignored without block
    t0 = time.monotonic()
    with pytest.raises(Empty):
        q.get(timeout=0.2)
    assert 0.15 <= time.monotonic() - t0 < 0.2 + 10
    q.put_nowait("a")
    assert q.get_nowait() == "a"  # put then get_nowait in one process: no feeder-thread delay
    q.put("b", block=False)
    assert q.get(block=False) == "b"


def test_bounded_queue_full_and_put_timeout(h):
    q = h.queue(2)
    q.put(1)
    q.put(2)
    assert q.full() and q.qsize() == 2
    with pytest.raises(Full):
        q.put_nowait(3)
    with pytest.raises(Full):
        q.put(3, block=False)
    t0 = time.monotonic()
    with pytest.raises(Full):
        q.put(3, timeout=0.2)
    assert 0.15 <= time.monotonic() - t0 < 0.2 + 10
    assert q.get(timeout=WAIT) == 1
    assert not q.full()
    q.put(3, timeout=WAIT)
    assert [q.get(timeout=WAIT), q.get(timeout=WAIT)] == [2, 3]
    assert q.empty()


def test_qsize_empty_full(h):
    q = h.queue()
    assert (q.qsize(), q.empty(), q.full()) == (0, True, False)
    for i in range(3):
        q.put(i)
    assert (q.qsize(), q.empty(), q.full()) == (3, False, False)
    for _ in range(3):
        q.get(timeout=WAIT)
    assert (q.qsize(), q.empty()) == (0, True)


@pytest.mark.parametrize("maxsize", [0, -1])
def test_unbounded_put_never_blocks_beyond_capacity(h, maxsize):
    # 800 KiB through a 64 KiB ring: put_nowait never raises Full (the C core keeps a backlog)
    q = h.queue(maxsize, capacity=64 * KiB)
    items = [bytes([i]) * 4096 for i in range(200)]
    for item in items:
        q.put_nowait(item)
    assert not q.full()
    assert [q.get(timeout=WAIT) for _ in items] == items


def test_negative_timeout_raises_value_error(h):
    q = h.queue(1)
    with pytest.raises(ValueError):
        q.get(timeout=-1)
    with pytest.raises(ValueError):
        q.put(1, timeout=-1)
    q.put(1, False, -1)  # checked only when blocking, as queue.Queue
    assert q.get(False, -1) == 1


def test_close(h):
    q = h.queue()
    q.put(1)
    assert q.get(timeout=WAIT) == 1
    q.close()
    with pytest.raises(ValueError):
        q.put(2)
    with pytest.raises(ValueError):
        q.get(timeout=0.1)
    q.close()  # twice is fine
    q.join_thread()
    q.cancel_join_thread()


def test_constructor_arguments(PQ):
    for q in (PQ(), PQ(5), PQ(maxsize=5, capacity=1 * MiB), PQ(ctx=mp.get_context(FAST_METHOD)), PQ(named=False)):
        q.put(1)
        assert q.get(timeout=WAIT) == 1
        q.close()


def test_pickling_outside_spawning_is_refused_like_multiprocessing(h):
    q = h.queue()
    with pytest.raises(RuntimeError) as ours:
        pickle.dumps(q)
    theirs_q = mp.get_context(FAST_METHOD).Queue()
    with pytest.raises(RuntimeError) as theirs:
        pickle.dumps(theirs_q)
    theirs_q.close()
    assert PICKLE_REFUSED in str(ours.value) and PICKLE_REFUSED in str(theirs.value)
    q.put("still usable")
    assert q.get(timeout=WAIT) == "still usable"


# --- errors at the call that caused them --------------------------------------------------------------------


class Boom(Exception):
    pass


class RaisesOnPickle:
    def __reduce__(self):
        raise Boom("refuses to be pickled")


def test_unpicklable_item_raises_in_put_and_leaves_the_queue_unchanged(h):
    q = h.queue()
    q.put("before")
    with pytest.raises((pickle.PicklingError, TypeError, AttributeError)):
        q.put(lambda: 0)
    with pytest.raises(Boom):
        q.put(RaisesOnPickle())
    with pytest.raises(Boom):
        q.put_nowait(RaisesOnPickle())
    with pytest.raises(Boom):
        q.put_many(["a", RaisesOnPickle(), "b"])  # every item is serialized before any is queued
    assert q.qsize() == 1
    q.put("after")
    assert [q.get(timeout=WAIT), q.get(timeout=WAIT)] == ["before", "after"]
    with pytest.raises(Empty):
        q.get(timeout=0.1)
    # the failed puts counted no unfinished task
    q.task_done()
    q.task_done()
    assert q.join(timeout=WAIT) is True
    with pytest.raises(ValueError):
        q.task_done()


def test_unpicklable_item_takes_no_slot_of_a_bounded_queue(h):
    q = h.queue(1)
    with pytest.raises(Boom):
        q.put(RaisesOnPickle(), timeout=0.1)
    q.put_nowait("fits")
    assert q.get(timeout=WAIT) == "fits"


def test_item_larger_than_the_capacity_arrives(h):
    q = h.queue(capacity=64 * KiB)
    big = random.Random(5).randbytes(1 * MiB)
    q.put(big)
    q.put(["list", big, bytearray(big)])
    assert q.get(timeout=WAIT) == big
    assert q.get(timeout=WAIT) == ["list", big, bytearray(big)]
    p = h.start(_big_bytes_producer, q, 1 * MiB, 6)
    data = q.get(timeout=WAIT)
    assert hashlib.sha256(data).hexdigest() == q.get(timeout=WAIT)
    h.finish(p)


# --- put_many / get_many ------------------------------------------------------------------------------------


def test_put_many_get_many(h):
    q = h.queue()
    q.put_many(range(10))
    q.put_many([])
    first = q.get_many(4, timeout=WAIT)
    assert 1 <= len(first) <= 4
    got = list(first)
    while len(got) < 10:
        batch = q.get_many(100, timeout=WAIT)
        assert 1 <= len(batch) <= 100
        got += batch
    assert got == list(range(10))
    with pytest.raises(Empty):
        q.get_many(5, timeout=0.1)  # waits for the first item only
    with pytest.raises(Empty):
        q.get_many(5, block=False)
    for bad in (0, -1):
        with pytest.raises(ValueError):
            q.get_many(bad)
    with pytest.raises(ValueError):
        q.put_many([1], timeout=-1)


def test_put_many_on_a_bounded_queue_reports_the_inserted_prefix(h):
    q = h.queue(3)
    with pytest.raises(Full) as exc:
        q.put_many(range(5), timeout=0.1)
    assert exc.value.inserted == 3
    with pytest.raises(Full) as exc:
        q.put_many([9], block=False)
    assert exc.value.inserted == 0
    assert [q.get(timeout=WAIT) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(Full) as exc:
        q.put_many(range(10, 15), block=False)
    assert exc.value.inserted == 3
    assert [q.get(timeout=WAIT) for _ in range(3)] == [10, 11, 12]


def test_put_many_get_many_across_processes(h):
    q = h.queue(100)
    p = h.start(_put_many_range, q, 5000, 64)
    got = []
    while len(got) < 5000:
        batch = q.get_many(256, timeout=WAIT)
        assert 1 <= len(batch) <= 256
        got += batch
    assert got == list(range(5000))
    h.finish(p)


# --- across processes -------------------------------------------------------------------------------------


def test_blocking_get_wakes_for_a_put_in_a_child(h):
    q = h.queue()
    p = h.start(_put_after, q, 0.3, "x")
    assert q.get(timeout=WAIT) == "x"
    h.finish(p)


def test_blocking_put_wakes_when_a_child_gets(h):
    q = h.queue(1)
    q.put("first")
    p = h.start(_get_after, q, 0.3, "first")
    t0 = time.monotonic()
    q.put("second", timeout=WAIT)
    assert time.monotonic() - t0 > 0.1
    h.finish(p)
    assert q.get(timeout=WAIT) == "second"


@pytest.mark.parametrize("method", START_METHODS)
def test_start_methods(h, method):
    ctx = mp.get_context(method)
    q, back = h.queue(ctx=ctx), h.queue(ctx=ctx)
    p = h.start(_echo, q, back, 100, method=method)
    for i in range(100):
        q.put((i, "x" * i))
    assert [back.get(timeout=WAIT) for _ in range(100)] == [(i, "x" * i) for i in range(100)]
    assert q.join(timeout=WAIT) is True
    h.finish(p)


def test_task_done_and_join_across_processes(h):
    q = h.queue()
    for i in range(20):
        q.put(i)
    assert q.join(timeout=0.1) is False
    workers = [h.start(_task_worker, q) for _ in range(2)]
    q.put(None)
    q.put(None)
    assert q.join(timeout=WAIT) is True
    assert q.join() is True
    h.finish(*workers)
    with pytest.raises(ValueError):
        q.task_done()


def test_join_in_a_child_waits_for_task_done_in_the_parent(h):
    q = h.queue()
    ready = mp.get_context(FAST_METHOD).Event()
    q.put("work")
    p = h.start(_join_in_child, q, ready)
    assert ready.wait(WAIT)
    time.sleep(0.2)
    assert p.is_alive()
    assert q.get(timeout=WAIT) == "work"
    q.task_done()
    h.finish(p)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("maxsize", [0, 64], ids=["unbounded", "maxsize64"])
def test_four_producers_four_consumers(h, maxsize):
    producers, consumers, n = 4, 4, 10_000
    q, results = h.queue(maxsize), h.queue()
    cons = [h.start(_mpmc_consumer, q, results) for _ in range(consumers)]
    prods = [h.start(_mpmc_producer, q, idx, n) for idx in range(producers)]
    h.finish(*prods)
    for _ in range(consumers):
        q.put(None)
    lists = [results.get(timeout=WAIT) for _ in range(consumers)]
    h.finish(*cons)
    for got in lists:  # each consumer sees each producer's items in the order they were put
        for idx in range(producers):
            seqs = [seq for i, seq in got if i == idx]
            assert seqs == sorted(seqs)
    everything = sorted(item for got in lists for item in got)
    assert everything == [(idx, seq) for idx in range(producers) for seq in range(n)]  # exactly once


def test_ten_mib_bytes_both_ways(h):
    q, back = h.queue(), h.queue()
    p = h.start(_big_bytes_producer, q, 10 * MiB, 7)
    data = q.get(timeout=WAIT)
    assert type(data) is bytes and len(data) == 10 * MiB
    assert hashlib.sha256(data).hexdigest() == q.get(timeout=WAIT)
    h.finish(p)
    p = h.start(_digest_echo, q, back, 2)
    payloads = [data, bytearray(data[::-1])]
    for payload in payloads:
        q.put(payload)
    for payload in payloads:
        assert back.get(timeout=WAIT) == (type(payload).__name__, hashlib.sha256(payload).hexdigest())
    h.finish(p)


@pytest.mark.parametrize("size", [1 * MiB, 8 * MiB], ids=["1MiB", "8MiB"])
def test_numpy_arrays_intact(h, size):
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(size)
    arrays = [
        rng.standard_normal(size // 8),  # float64, contiguous
        rng.integers(0, 256, size, dtype=np.uint8).reshape(-1, 1024),  # 2-D
        np.asfortranarray(rng.integers(-2**31, 2**31, size // 4, dtype=np.int32).reshape(1024, -1)),
        rng.standard_normal(size // 4)[::2],  # strided view: size bytes of a twice larger array
    ]
    q, back = h.queue(), h.queue()
    p = h.start(_array_echo, q, back, len(arrays))
    for a in arrays:
        q.put(a)
    for a in arrays:
        got, crc = back.get(timeout=WAIT)
        assert crc == zlib.crc32(a.tobytes())  # what the child received
        assert got.dtype == a.dtype and got.shape == a.shape and np.array_equal(got, a)  # and back
    h.finish(p)


class OutOfBand:
    """Pickles its data as an out-of-band buffer (PEP 574), as numpy arrays do, and keeps what the
    queue hands back."""

    def __init__(self, data):
        self.data = data

    def __reduce_ex__(self, protocol):
        return OutOfBand, (pickle.PickleBuffer(self.data),)


def test_large_buffers_arrive_private_writable_and_distinct(h):
    """Large out-of-band buffers are read into reused memory (docs/design/SHM-QUEUE.md, "Large
    items"): what a get returns is the reader's own, however many are alive at once and whatever
    is freed between gets."""
    np = pytest.importorskip("numpy")
    q = h.queue(capacity=64 * MiB)
    sizes = [1 * MiB, 3 * MiB, 1 * MiB, 300_000, 5 * MiB, 1 * MiB]
    sent = [np.full(n // 8, i, dtype=np.float64) for i, n in enumerate(sizes)]
    for rnd in range(3):
        q.put_many(sent)
        got = q.get_many(len(sent), timeout=WAIT)
        while len(got) < len(sent):
            got += q.get_many(len(sent) - len(got), timeout=WAIT)
        for i, a in enumerate(got):
            assert np.array_equal(a, sent[i]) and a.flags.writeable
        got[0][:] = -1  # one array's memory is nobody else's
        assert all(np.array_equal(a, sent[i]) for i, a in enumerate(got) if i)
        assert np.array_equal(pickle.loads(pickle.dumps(got[4])), sent[4])
        del got[1::2]  # freed ones are reused by the next round: the kept ones must stay intact
        assert all(np.array_equal(a, sent[2 * i]) for i, a in enumerate(got) if i)
    q.put(OutOfBand(bytearray(b"x" * (2 * MiB))))
    buf = q.get(timeout=WAIT).data
    view = memoryview(buf)
    assert not view.readonly and view.nbytes == 2 * MiB and bytes(view) == b"x" * (2 * MiB)
    assert pickle.loads(pickle.dumps(buf)) == bytearray(b"x" * (2 * MiB))  # a copy, as a bytearray
    del view
    q.close()
    assert bytes(memoryview(buf)[:3]) == b"xxx"  # outlives the queue


def _tagged(i, size):
    body = i.to_bytes(4, "little") * (size // 4)
    return zlib.crc32(body).to_bytes(4, "little") + body


def _untorn(item):
    body = item[4:]
    assert zlib.crc32(body) == int.from_bytes(item[:4], "little"), "a torn large item"
    return int.from_bytes(body[:4], "little")


_MIXED = [300_000, 5 * MiB, 1 * MiB, 40_000, 2 * MiB, 700_000]  # over and under the spill threshold


def _put_mixed(q, first, n):
    for i in range(first, first + n):
        q.put(_tagged(i, _MIXED[i % len(_MIXED)]))


def test_large_items_of_mixed_sizes_from_two_producers(h):
    """Pooled spill segments taken, remade for a bigger item, reused and handed back while two
    producers and this consumer race: every item arrives once, whole."""
    q = h.queue(capacity=256 * 1024)
    procs = [h.start(_put_mixed, q, k * 1000, 60) for k in range(2)]
    got = []
    while len(got) < 120:  # get() and get_many() in turns
        batch = q.get_many(3, timeout=WAIT) if len(got) % 2 else [q.get(timeout=WAIT)]
        got += [_untorn(item) for item in batch]
    assert sorted(got) == list(range(60)) + list(range(1000, 1060))
    h.finish(*procs)


def _pool_names():
    return {n for n in os.listdir("/dev/shm") if n.startswith("fastq-p")}


def test_the_spill_pool_reuses_segments_and_trims_idle_ones(crash_h):
    """A stream of large items reuses a few segments (not one per item); once idle they are removed
    by the next get that waits, and the queue's last holder removes the rest."""
    before = _pool_names()
    q = crash_h.queue(capacity=64 * 1024)
    p = crash_h.start(_put_mixed, q, 0, 200)
    for _ in range(200):
        _untorn(q.get(timeout=WAIT))
    crash_h.finish(p)
    used = _pool_names() - before
    assert 0 < len(used) <= 16, used
    time.sleep(3.2)  # idle past 2 s; the trim runs at most once a second per queue
    with pytest.raises(Empty):
        q.get(timeout=0.1)
    assert _pool_names() - before == set()
    q.put(_tagged(1, 2 * MiB))  # and the pool starts again
    assert _untorn(q.get(timeout=WAIT)) == 1
    assert len(_pool_names() - before) == 1
    crash_h.queues.clear()
    del q
    gc.collect()
    assert _pool_names() - before == set()


def test_large_items_beyond_the_pool_wait_in_the_backlog_not_in_new_segments(crash_h):
    """An unbounded queue's producer far ahead of its reader: past the 16 pooled segments, large
    items wait in the producer's backlog (put returns at once) instead of costing a segment each,
    and arrive in order."""
    before = _pool_names() | {n for n in os.listdir("/dev/shm") if n.startswith("fastq-")}
    q = crash_h.queue()
    t0 = time.monotonic()
    for i in range(40):
        q.put(_tagged(i, 1 * MiB))
    assert time.monotonic() - t0 < WAIT
    assert q.qsize() == 40
    assert len({n for n in os.listdir("/dev/shm") if n.startswith("fastq-")} - before) <= 16
    assert [_untorn(q.get(timeout=WAIT)) for _ in range(40)] == list(range(40))
    q.join_thread()


def _get_forever(q, out):
    while True:
        out.put(_untorn(q.get(timeout=WAIT)))


def test_sigkilled_pool_users_leak_nothing_and_tear_nothing(crash_h):
    """Producers and consumers of large items SIGKILLed at random moments: what arrives is whole
    and arrives once, the survivors go on, and nothing stays in /dev/shm once the queue is dropped."""
    before = {n for n in os.listdir("/dev/shm") if n.startswith("fastq-")}
    q = crash_h.queue(capacity=64 * 1024)
    out = crash_h.queue()
    rng = random.Random(16)
    seen = []
    for rnd in range(6):
        producers = [crash_h.start(_put_mixed, q, 10_000 * rnd + 1000 * k, 40) for k in range(2)]
        consumer = crash_h.start(_get_forever, q, out)
        time.sleep(rng.uniform(0.05, 0.4))
        for victim in rng.sample(producers + [consumer], 2):
            os.kill(victim.pid, signal.SIGKILL)
        for p in producers + [consumer]:
            if p is not consumer:
                p.join(WAIT)
        os.kill(consumer.pid, signal.SIGKILL)
        consumer.join(WAIT)
        while True:  # what the consumer passed on, then what is still queued
            try:
                seen.append(out.get(timeout=0.5))
            except Empty:
                break
        while True:
            try:
                seen.append(_untorn(q.get(timeout=0.5)))
            except Empty:
                break
    assert len(seen) == len(set(seen)), "a large item arrived twice"
    q.put(_tagged(7, 3 * MiB))  # the pool still serves
    assert _untorn(q.get(timeout=WAIT)) == 7
    crash_h.queues.clear()
    del q, out
    gc.collect()
    left = {n for n in os.listdir("/dev/shm") if n.startswith("fastq-")} - before
    assert left == set(), left


def test_get_copy_false_gives_views_that_stay_put(h):
    """get(copy=False): a large array arrives without the reader's copy (C core: a read-only view of
    the shared memory; the pure core copies), stays intact while later items reuse the pool, and
    outlives the queue."""
    np = pytest.importorskip("numpy")
    q = h.queue()
    a = np.arange(MiB // 8, dtype=np.float64)  # 1 MiB: over a quarter of the default ring
    q.put(a)
    view = q.get(timeout=WAIT, copy=False)
    assert np.array_equal(view, a)
    if h.cls.__module__ == "fastq._shm":
        assert not view.flags.writeable
        with pytest.raises(ValueError):
            view[0] = 1
    for k in range(40):  # other items through the pool, by copy and by view, while the view lives
        q.put(a + k + 1)
        other = q.get(timeout=WAIT, copy=bool(k % 2))
        assert other[0] == k + 1
        del other
    assert np.array_equal(view, a)
    q.put(5)
    assert q.get(copy=False) == 5  # small items: as ever
    h.queues.remove(q)
    q.close()
    del q
    gc.collect()
    assert np.array_equal(view, a)  # the queue is gone, the view is not


def test_a_view_in_a_reference_cycle_gives_its_pool_entry_back(crash_h):
    """A view from get(copy=False) inside a reference cycle is freed by the cyclic collector, which
    may clear the object holding the segment before it is deallocated: its pool entry must still go
    back (FREE), and the handle's own mapping of the segment must not be unmapped under it."""
    from fastq._shm import _pool_layout
    at, _, entry_size, _ = _pool_layout()
    q = crash_h.queue()
    item = [pickle.PickleBuffer(bytes(4 * MiB))]  # out of band: get(copy=False) hands the view itself
    item.append(item)
    q.put(item)
    got = q.get(timeout=WAIT, copy=False)
    assert type(got[0]) is memoryview and got[1] is got
    state = lambda: struct.unpack_from("<Q", q._segment_view(), at)[0] >> 60
    assert state() == 4  # HELD while the view lives
    del got, item
    gc.collect()
    assert state() == 1  # FREE: given back, not held for good
    mapped = sum(1 for line in open("/proc/self/maps") if "/fastq-p" in line)
    assert mapped == 1  # the handle's mapping of the segment is still there, mapped once
    for k in range(4):  # and serves the next items
        q.put([pickle.PickleBuffer(bytes([k + 1]) * (4 * MiB))])
        assert bytes(q.get(timeout=WAIT)[0][-2:]) == bytes([k + 1]) * 2


def _hold_views(q, n, ready):
    held = [q.get(timeout=WAIT, copy=False) for _ in range(n)]
    ready.put(sum(int(x[0]) for x in held))
    time.sleep(WAIT)


def test_a_killed_holder_of_views_costs_the_pool_nothing(crash_h):
    """A consumer holding zero-copy views of every pooled segment is SIGKILLed: writers take the
    entries over (new segments), large items flow, and nothing stays in /dev/shm."""
    np = pytest.importorskip("numpy")
    before = {n for n in os.listdir("/dev/shm") if n.startswith("fastq-")}
    q = crash_h.queue()
    ready = crash_h.queue()
    for k in range(16):
        q.put(np.full(MiB // 8, k, dtype=np.float64))
    p = crash_h.start(_hold_views, q, 16, ready)
    assert ready.get(timeout=WAIT) == sum(range(16))
    os.kill(p.pid, signal.SIGKILL)
    p.join(WAIT)
    for k in range(20):
        q.put(np.full(MiB // 8, 100 + k, dtype=np.float64))
        assert q.get(timeout=WAIT)[0] == 100 + k
    crash_h.queues.clear()
    del q, ready
    gc.collect()
    assert {n for n in os.listdir("/dev/shm") if n.startswith("fastq-")} - before == set()


def test_a_fork_child_keeps_its_views_while_the_parent_moves_on(crash_h):
    """Views inherited by a fork child keep their bytes after the parent lets its own go and the
    pool serves other items: a segment a child may map is removed, never reused."""
    np = pytest.importorskip("numpy")
    q = crash_h.queue()
    q.put(np.full(MiB // 8, 7.0))
    view = q.get(timeout=WAIT, copy=False)
    r, w = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        os.read(r, 1)  # the parent has moved on
        os._exit(0 if float(view.min()) == float(view.max()) == 7.0 else 1)
    os.close(r)
    del view
    gc.collect()
    for k in range(40):
        q.put(np.full(MiB // 8, float(k)))
        assert q.get(timeout=WAIT)[0] == k
    os.write(w, b"x")
    os.close(w)
    os.close(r2)
    os.close(w2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child's view changed under it"


# --- shutdown ----------------------------------------------------------------------------------------------


def test_shutdown_lets_items_drain_then_raises_in_every_process(h):
    q = h.queue()
    for i in range(3):
        q.put(i)
    q.shutdown()
    with pytest.raises(ShutDown):
        q.put(3)
    with pytest.raises(ShutDown):
        q.put_nowait(3)
    with pytest.raises(ShutDown) as exc:
        q.put_many([3, 4])
    assert exc.value.inserted == 0
    p = h.start(_drain_after_shutdown, q, 3)
    h.finish(p)
    t0 = time.monotonic()
    with pytest.raises(ShutDown):
        q.get(timeout=WAIT)  # not Empty after WAIT: ShutDown at once
    assert time.monotonic() - t0 < 10
    with pytest.raises(ShutDown):
        q.get_nowait()
    q.shutdown()  # again: fine


@pytest.mark.parametrize("method", sorted({FAST_METHOD, "spawn"} & set(START_METHODS)))
def test_shutdown_wakes_a_getter_blocked_in_a_child(h, method):
    ctx = mp.get_context(method)
    q, ready = h.queue(ctx=ctx), ctx.Event()
    p = h.start(_blocked_get_expects_shutdown, q, ready, method=method)
    assert ready.wait(WAIT)
    time.sleep(0.2)
    assert p.is_alive()
    q.shutdown()
    h.finish(p)


def test_shutdown_wakes_a_putter_blocked_in_a_child(h):
    q, ready = h.queue(1), mp.get_context(FAST_METHOD).Event()
    q.put("full")
    p = h.start(_blocked_put_expects_shutdown, q, ready)
    assert ready.wait(WAIT)
    time.sleep(0.2)
    assert p.is_alive()
    q.shutdown()
    h.finish(p)
    assert q.get(timeout=WAIT) == "full"  # not immediate: what was queued still comes out


def test_shutdown_immediate_from_a_child_discards_and_counts_done(h):
    q = h.queue()
    for i in range(5):
        q.put(i)
    assert q.get(timeout=WAIT) == 0  # got, not done yet
    h.finish(h.start(_shutdown_immediate, q))
    with pytest.raises(ShutDown):
        q.get(timeout=WAIT)  # at once, though 4 items were queued
    with pytest.raises(ShutDown):
        q.put(9)
    assert q.qsize() == 0
    assert q.join(timeout=0.2) is False  # the item got before the shutdown is not done
    q.task_done()
    assert q.join(timeout=WAIT) is True


def test_shutdown_immediate_wakes_join_in_a_child(h):
    q, ready = h.queue(), mp.get_context(FAST_METHOD).Event()
    for i in range(3):
        q.put(i)
    p = h.start(_join_in_child, q, ready)
    assert ready.wait(WAIT)
    time.sleep(0.2)
    assert p.is_alive()
    q.shutdown(immediate=True)
    h.finish(p)


# --- hygiene ------------------------------------------------------------------------------------------------


def _resources():
    gc.collect()
    fds = len(os.listdir("/proc/self/fd"))
    with open("/proc/self/maps") as f:
        maps = sum("fastq" in line for line in f)
    shm = {name for name in os.listdir("/dev/shm") if "fastq" in name.lower()}
    return fds, maps, threading.active_count(), shm


@pytest.mark.skipif(not LINUX, reason="reads /proc/self and /dev/shm")
@pytest.mark.timeout(300)
def test_no_leaks_over_create_close_cycles(PQ):
    big = b"b" * (1 * MiB)  # larger than the capacity: a spill segment on the C core

    def cycle(i):
        q = PQ(capacity=64 * KiB, named=bool(i % 2))
        q.put(i)
        q.put(big)
        assert q.get(timeout=WAIT) == i and q.get(timeout=WAIT) == big
        if i % 4 < 2:  # half closed explicitly, half left to the garbage collector
            q.close()
            q.join_thread()

    for i in range(8):  # warm-up: lazily created process-wide resources (multiprocessing's heap, ...)
        cycle(i)
    gc.collect()
    time.sleep(0.5)  # the warm-up's feeder threads (pure core) end once their queues are collected
    fds0, maps0, threads0, shm0 = _resources()
    for i in range(200):
        cycle(i)
    # feeder threads of queues left to the garbage collector finish on their own
    _until(lambda: _resources()[2] <= threads0, 10, 0.05)
    fds, maps, threads, shm = _resources()
    if shm - shm0:  # another process's segments come and go: look twice
        time.sleep(0.5)
        shm = _resources()[3]
    assert fds <= fds0 + 2, f"{fds - fds0} file descriptors leaked over 200 queues"
    assert maps <= maps0, f"{maps - maps0} fastq mappings leaked over 200 queues"
    assert threads <= threads0, f"{threads - threads0} threads left over 200 queues"
    assert not (shm - shm0), f"/dev/shm entries left: {sorted(shm - shm0)}"


# --- crash tolerance (C core only) ---------------------------------------------------------------------

FAULT_CAPACITY = 256 * KiB
_HDR = struct.Struct("<IQI")  # producer index, sequence number, crc32 of the payload
_REPORT = struct.Struct("<QB")  # sequence number, checksum ok


def _fault_payload(rng):
    r = rng.random()
    if r < 0.85:
        n = rng.randrange(0, 2 * KiB)
    elif r < 0.97:
        n = rng.randrange(2 * KiB, 48 * KiB)
    else:
        n = rng.randrange(FAULT_CAPACITY // 4, 2 * FAULT_CAPACITY)  # a spill segment on the C core
    return rng.randbytes(n)


def _fault_encode(idx, seq, payload, kind):
    raw = _HDR.pack(idx, seq, zlib.crc32(payload)) + payload
    if kind == 0:
        return raw  # bytes: the raw path
    if kind == 1:
        return bytearray(raw)
    return ("pickled", raw)  # the pickle path


def _fault_decode(msg):
    """(producer index, sequence number, checksum ok) of a message; raises on a malformed one."""
    if isinstance(msg, tuple):
        tag, raw = msg
        assert tag == "pickled"
    else:
        assert type(msg) in (bytes, bytearray)
        raw = msg
    idx, seq, crc = _HDR.unpack_from(raw)
    return idx, seq, zlib.crc32(memoryview(raw)[_HDR.size:]) == crc


def _fault_producer(q, idx, seed):
    """Put numbered, checksummed messages until killed."""
    rng = random.Random(seed)
    seq = 0
    while True:
        q.put(_fault_encode(idx, seq, _fault_payload(rng), rng.randrange(3)))
        seq += 1


def _fault_feed(q, n, seed):
    rng = random.Random(seed)
    for seq in range(n):
        q.put(_fault_encode(0, seq, _fault_payload(rng), rng.randrange(3)))


def _fault_victim_consumer(q, conn):
    """Get messages until killed, reporting each (sequence number, checksum ok) in one atomic pipe write."""
    while True:
        _, seq, ok = _fault_decode(q.get())
        conn.send_bytes(_REPORT.pack(seq, ok))


def _kill(p):
    os.kill(p.pid, signal.SIGKILL)
    p.join(WAIT)
    assert not p.is_alive()


FAULT_KILLS = [pytest.param(30, id="30kills"), pytest.param(300, id="300kills", marks=pytest.mark.slow)]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("kills", FAULT_KILLS)
def test_sigkill_producers_mid_put(crash_h, kills):
    """Producers killed at random moments: the consumer never hangs and never reads a torn message;
    each producer's messages arrive once, in order, with at most its last one lost."""
    q = crash_h.queue(64, capacity=FAULT_CAPACITY, ctx=mp.get_context("fork"))
    rng = random.Random(kills)
    next_seq = {}  # producer index -> next sequence number expected

    def take(msg):
        idx, seq, ok = _fault_decode(msg)
        assert ok, f"torn message from producer {idx} (seq {seq})"
        assert seq == next_seq.get(idx, 0), f"producer {idx}: got seq {seq}, expected {next_seq.get(idx, 0)}"
        next_seq[idx] = seq + 1

    def consume_for(seconds):
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                take(q.get(timeout=left))
            except Empty:
                pass

    alive = deque()
    for k in range(kills):
        while len(alive) < 2:
            idx = len(next_seq) + len(alive) + k
            alive.append(crash_h.start(_fault_producer, q, idx, rng.randrange(2**32), method="fork"))
            next_seq.setdefault(idx, 0)
        consume_for(rng.uniform(0.0, 0.02))
        _kill(alive.popleft())
    while alive:
        _kill(alive.popleft())
    deadline = time.monotonic() + WAIT
    while True:  # drain: dead writers' records are skipped, then Empty, never a hang
        try:
            take(q.get(timeout=1.0))
        except Empty:
            break
        assert time.monotonic() < deadline, "the drain did not end"
    assert sum(next_seq.values()) > 0
    q.put(b"still works")  # the reserve lock was recovered from whoever died holding it
    assert q.get(timeout=WAIT) == b"still works"
    assert q.qsize() == 0


@pytest.mark.timeout(600)
@pytest.mark.parametrize("kills", FAULT_KILLS)
def test_sigkill_consumers_mid_get(crash_h, kills):
    """Consumers killed at random moments: no hang, no torn message, no duplicate; the messages come
    out in order, and each kill loses at most the one message its victim held."""
    ctx = mp.get_context("fork")
    q = crash_h.queue(32, capacity=FAULT_CAPACITY, ctx=ctx)
    r, w = ctx.Pipe(duplex=False)
    n = 2000 + 200 * kills
    rng = random.Random(kills + 1)
    producer = crash_h.start(_fault_feed, q, n, rng.randrange(2**32), method="fork")
    reports = []

    def collect(seconds):
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if not r.poll(max(left, 0.0)):
                if left <= 0:
                    return
                continue
            reports.append(_REPORT.unpack(r.recv_bytes()))

    for _ in range(kills):
        victim = crash_h.start(_fault_victim_consumer, q, w, method="fork")
        collect(rng.uniform(0.002, 0.03))
        _kill(victim)
        collect(0)
    deadline = time.monotonic() + WAIT
    while True:  # the parent drains the rest while the producer finishes
        try:
            _, seq, ok = _fault_decode(q.get(timeout=0.5))
            reports.append((seq, ok))
        except Empty:
            if not producer.is_alive():
                break
        assert time.monotonic() < deadline, "the drain did not end"
    crash_h.finish(producer)
    collect(0)
    seqs = [seq for seq, _ in reports]
    assert all(ok for _, ok in reports), "torn message"
    assert all(a < b for a, b in zip(seqs, seqs[1:])), "a duplicate or out-of-order message"
    assert n - len(seqs) <= kills, f"{n - len(seqs)} messages lost to {kills} kills"


def _segment(q):
    if not hasattr(q, "_segment_view"):
        pytest.skip("this ProcessQueue exposes no _segment_view()")
    return q._segment_view()


def _header_size(view):
    """The arena's offset: the header_size field (u32 at offset 12, docs/design/SHM-QUEUE.md) when plausible."""
    size = struct.unpack_from("<I", view, 12)[0]
    return size if 64 <= size <= len(view) // 2 and size % 64 == 0 else 4096


def test_scribbled_magic_gives_queue_corrupted(crash_h):
    q = crash_h.queue()
    q.put(b"item")
    view = _segment(q)
    view[0:8] = b"SCRIBBLE"
    with pytest.raises(QueueCorrupted):
        q.get(timeout=5)
    with pytest.raises(QueueCorrupted):
        q.put(b"more", timeout=5)
    view.release()


def test_scribbled_cursors_give_queue_corrupted(crash_h):
    q = crash_h.queue()
    for i in range(3):
        q.put(i)
    view = _segment(q)
    hs = _header_size(view)
    view[64:hs] = random.Random(8).randbytes(hs - 64)  # everything after the first line (magic, cap, ...)
    with pytest.raises(QueueCorrupted):
        q.get(timeout=5)
    view.release()


def test_scribbled_record_gives_queue_corrupted(crash_h):
    q = crash_h.queue()
    q.put(b"x" * 1000)
    view = _segment(q)
    hs = _header_size(view)
    view[hs:hs + 64] = random.Random(9).randbytes(64)  # the first record's header
    with pytest.raises(QueueCorrupted):
        q.get(timeout=5)
    view.release()


def test_get_many_returns_every_item_already_queued(h):
    """Twins alike: items a put() accepted count as queued on both cores, even while the pure
    core's feeder thread still carries them to the pipe."""
    q = h.queue()
    for n in (1, 3, 50):
        q.put_many(list(range(n)))
        assert q.get_many(100, timeout=WAIT) == list(range(n))
