"""ProcessQueue between threads of one process, on both cores: producers and consumers on one ring,
with items large enough that their copies run without the GIL (so threads really overlap in the
ring's code). Checks: every item arrives exactly once, untorn, in per-producer order per consumer.

This is also what tools/tsan runs to check the shared-memory ring's atomics (TSan sees the threads
of one process, not other processes).
"""
import threading
import zlib

import pytest

from fastq import Empty

pytestmark = pytest.mark.timeout(120)

N_PRODUCERS, N_CONSUMERS, PER_PRODUCER = 3, 3, 300


@pytest.fixture
def PQ(impl):
    cls = getattr(impl.module, "ProcessQueue", None)
    if cls is None:
        pytest.skip("no ProcessQueue in this build")
    return cls


def _item(p, i):
    size = 70_000 if i % 5 == 0 else (i * 37) % 2000  # past COPY_WITHOUT_GIL (64 KiB): copied without the GIL
    payload = bytes([(p * 31 + i) & 0xFF]) * size
    return (p, i, zlib.crc32(payload), payload) if i % 2 else bytes([p]) + i.to_bytes(4, "little") + payload


def _check(item):
    if type(item) is tuple:
        p, i, crc, payload = item
        assert zlib.crc32(payload) == crc, f"torn item {p}/{i}"
    else:
        p, i = item[0], int.from_bytes(item[1:5], "little")
        assert item == _item(p, i), f"torn item {p}/{i}"
    return p, i


@pytest.mark.parametrize("maxsize, capacity", [(0, 1 << 20), (8, 1 << 18), (64, 1 << 16)],
                         ids=["unbounded", "bounded", "small-ring"])
def test_threads_share_one_ring(PQ, maxsize, capacity):
    q = PQ(maxsize, capacity=capacity)
    got = [[] for _ in range(N_CONSUMERS)]
    errors = []
    total = N_PRODUCERS * PER_PRODUCER
    received = [0]
    lock = threading.Lock()

    def produce(p):
        try:
            for start in range(0, PER_PRODUCER, 3):
                if start % 2:
                    q.put_many([_item(p, i) for i in range(start, min(start + 3, PER_PRODUCER))], timeout=60)
                else:
                    for i in range(start, min(start + 3, PER_PRODUCER)):
                        q.put(_item(p, i), timeout=60)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    def consume(c):
        try:
            while True:
                try:
                    items = q.get_many(4, timeout=0.05) if c % 2 else [q.get(timeout=0.05)]
                except Empty:
                    with lock:
                        if received[0] >= total or errors:
                            return
                    continue
                got[c].extend(_check(item) for item in items)
                with lock:
                    received[0] += len(items)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    producers = [threading.Thread(target=produce, args=(p,)) for p in range(N_PRODUCERS)]
    consumers = [threading.Thread(target=consume, args=(c,)) for c in range(N_CONSUMERS)]
    for t in consumers + producers:
        t.start()
    for t in producers:
        t.join(90)
        assert not t.is_alive(), "a producer hangs"
    for t in consumers:  # they stop once every item is in
        t.join(90)
        assert not t.is_alive(), "a consumer hangs"
    assert not errors, errors
    for per_consumer in got:  # per-producer FIFO, as each consumer saw it
        last = {}
        for p, i in per_consumer:
            assert i > last.get(p, -1), f"producer {p}: {i} after {last[p]}"
            last[p] = i
    everything = sorted(x for per_consumer in got for x in per_consumer)
    assert everything == [(p, i) for p in range(N_PRODUCERS) for i in range(PER_PRODUCER)]
    q.close()
