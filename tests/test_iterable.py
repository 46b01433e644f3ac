"""IterableQueue on both cores: endpoints across threads and processes, Done, dead producers."""
import multiprocessing
import os
import signal
import threading
import time

import pytest

import fastq
from fastq import iterable


@pytest.fixture
def IterableQueue(impl):
    return impl.process_api.IterableQueue


def _produce(producer, k, n=10):
    for i in range(n):
        producer.put((k, i))
    producer.close()


def _consume(consumer, out):
    for item in consumer:
        out.put(item)


def _put_then_hang(producer):
    producer.put(("x", 0))
    time.sleep(60)


def test_public_names():
    assert fastq.IterableQueue is iterable.IterableQueue and fastq.IterableQueue._ProcessQueue is fastq.ProcessQueue
    assert fastq.pure.IterableQueue._ProcessQueue is fastq.pure.ProcessQueue


def test_threads_until_done(IterableQueue):
    iq = IterableQueue()
    producers = [iq.get_producer() for _ in range(3)]
    iq.close()
    with pytest.raises(fastq.Closed):
        iq.get_producer()
    results = []
    lock = threading.Lock()

    def consume(c):
        for item in c:
            with lock:
                results.append(item)

    consumers = [threading.Thread(target=consume, args=(iq.get_consumer(),)) for _ in range(4)]
    feeders = [threading.Thread(target=_produce, args=(p, k, 100)) for k, p in enumerate(producers)]
    for t in consumers + feeders:
        t.start()
    for t in consumers + feeders:
        t.join(30)
        assert not t.is_alive()
    assert sorted(results) == sorted((k, i) for k in range(3) for i in range(100))


def test_get_raises_empty_while_producers_remain_then_done(IterableQueue):
    iq = IterableQueue()
    p = iq.get_producer()
    c = iq.get_consumer()
    with pytest.raises(fastq.Empty):
        c.get(timeout=0.1)  # no close() yet: more producers may come
    iq.close()
    with pytest.raises(fastq.Empty):
        c.get(block=False)  # a producer remains
    p.put(1)
    p.close()
    with pytest.raises(fastq.Closed):
        p.put(2)
    assert c.get(timeout=5) == 1
    with pytest.raises(fastq.Done):
        c.get(timeout=5)
    with pytest.raises(ValueError):
        c.get(timeout=-1)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_three_producer_and_five_consumer_processes(IterableQueue, impl, method):
    ctx = multiprocessing.get_context(method)
    kwargs = {"ctx": ctx} if impl.is_pure_python else {}
    iq = IterableQueue(**kwargs)
    out = ctx.Queue()
    producers = [ctx.Process(target=_produce, args=(iq.get_producer(), k)) for k in range(3)]
    consumers = [ctx.Process(target=_consume, args=(iq.get_consumer(), out)) for _ in range(5)]
    iq.close()
    for p in producers + consumers:
        p.start()
    items = [out.get(timeout=30) for _ in range(30)]
    for p in producers + consumers:
        p.join(30)
        assert p.exitcode == 0
    assert sorted(items) == sorted((k, i) for k in range(3) for i in range(10))


@pytest.mark.timeout(60)
def test_a_killed_producer_does_not_hang_consumers(IterableQueue, impl):
    if impl.is_pure_python:
        pytest.skip("crash tolerance is the C core's promise (docs/design/ARCHITECTURE.md)")
    iq = IterableQueue()
    ctx = multiprocessing.get_context("fork")
    p = ctx.Process(target=_put_then_hang, args=(iq.get_producer(),))
    p.start()
    iq.close()
    c = iq.get_consumer()
    assert c.get(timeout=10) == ("x", 0)
    os.kill(p.pid, signal.SIGKILL)
    t0 = time.monotonic()
    assert list(c) == []
    assert time.monotonic() - t0 < 5
    p.join()
