"""The asyncio face (fastq/_aio.py) on both cores: async_get/async_put/async_get_many/async for,
threads and processes on the other side, timeouts, cancellation, shutdown, several loops."""
import asyncio
import contextlib
import gc
import multiprocessing
import os
import queue
import random
import signal
import sys
import threading
import time

import pytest

import fastq

pytestmark = pytest.mark.timeout(120)

IN_PROCESS = ["Queue", "LifoQueue", "PriorityQueue", "SimpleQueue", "ClosableQueue"]
N = 2000


def make(impl, name, maxsize=0):
    cls = impl.api.ClosableQueue if name == "ClosableQueue" else getattr(impl, name)
    return cls() if name == "SimpleQueue" else cls(maxsize)


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


# ---- in-process queues ----

@pytest.mark.parametrize("name", IN_PROCESS)
def test_thread_to_coroutine(impl, name):
    q = make(impl, name)

    def produce():
        for i in range(N):
            q.put(i)
            if i % 200 == 0:
                time.sleep(0.001)  # let the coroutine catch up and wait

    async def main():
        t = threading.Thread(target=produce)
        t.start()
        got = [await q.async_get(timeout=30) for _ in range(N)]
        t.join()
        return got

    assert sorted(run(main())) == list(range(N))


@pytest.mark.parametrize("name", IN_PROCESS)
def test_coroutine_to_thread(impl, name):
    q = make(impl, name, maxsize=3)
    got = []

    def consume():
        for _ in range(N):
            got.append(q.get(timeout=30))
            if len(got) % 200 == 0:
                time.sleep(0.01)  # the putter finds the queue full and waits

    async def main():
        t = threading.Thread(target=consume)
        t.start()
        for i in range(N):
            await q.async_put(i, timeout=30)
        await asyncio.get_running_loop().run_in_executor(None, t.join)

    run(main())
    assert sorted(got) == list(range(N))


@pytest.mark.parametrize("name", IN_PROCESS)
def test_get_many_and_timeouts(impl, name):
    q = make(impl, name, maxsize=2)

    async def main():
        with pytest.raises(fastq.EmptyTimeout) as info:
            await q.async_get(timeout=0.05)
        exc = info.value
        assert isinstance(exc, queue.Empty) and isinstance(exc, TimeoutError)
        assert isinstance(exc, asyncio.TimeoutError)  # the same class from 3.11, a base on 3.10
        with pytest.raises(fastq.Empty):
            await q.async_get_many(5, timeout=0)
        with pytest.raises(ValueError):
            await q.async_get(timeout=-1)
        threading.Timer(0.05, q.put, args=(0,)).start()
        assert await q.async_get(timeout=float("nan")) == 0  # no limit, as get()
        await q.async_put(1)
        await q.async_put(2)
        if name != "SimpleQueue":
            with pytest.raises(fastq.FullTimeout) as info:
                await q.async_put(3, timeout=0.05)
            assert isinstance(info.value, queue.Full) and isinstance(info.value, TimeoutError)
        items = await q.async_get_many(5)
        assert sorted(items) == [1, 2]

    run(main())


@pytest.mark.parametrize("name", ["Queue", "LifoQueue", "PriorityQueue", "ClosableQueue"])
def test_shutdown_wakes_awaiting_coroutines(impl, name):
    q = make(impl, name, maxsize=1)
    full = make(impl, name, maxsize=1)
    full.put(0)

    async def main():
        getters = [asyncio.ensure_future(q.async_get()) for _ in range(5)]
        putters = [asyncio.ensure_future(full.async_put(i)) for i in range(5)]
        await asyncio.sleep(0.05)
        threading.Thread(target=q.shutdown).start()
        threading.Thread(target=full.shutdown).start()
        results = await asyncio.gather(*getters, *putters, return_exceptions=True)
        assert all(isinstance(r, fastq.ShutDown) for r in results), results

    run(main())


@pytest.mark.parametrize("name", ["Queue", "ClosableQueue"])
def test_async_for_until_shutdown_and_drained(impl, name):
    q = make(impl, name)

    def produce():
        for i in range(100):
            q.put(i)
        (q.close if name == "ClosableQueue" else q.shutdown)()

    async def main():
        threading.Thread(target=produce).start()
        out = [item async for item in q]
        if name == "ClosableQueue":
            q.join()  # task_done() was called for every item
        return out

    assert run(main()) == list(range(100))


def test_subclass_overriding_a_hook(impl):
    class Logged(impl.Queue):  # runs queue.py's algorithm, with real conditions, on both cores
        def _put(self, item):
            super()._put(item)

    q = Logged(maxsize=1)

    async def main():
        def produce():
            for i in range(200):
                q.put(i)
        t = threading.Thread(target=produce)
        t.start()
        got = [await q.async_get(timeout=30) for _ in range(200)]
        t.join()
        await q.async_put("x")
        threading.Timer(0.05, q.get).start()
        await q.async_put("y", timeout=30)
        return got

    assert run(main()) == list(range(200))
    assert q.get_nowait() == "y"


def test_random_cancellations_lose_nothing(impl):
    """10,000 gets cancelled at random moments while items flow: each item is delivered once,
    to a get that returned it, or is still queued."""
    q = impl.Queue()
    total = 20000
    delivered = []

    def produce():
        rnd = random.Random(1)
        for i in range(total):
            q.put(i)
            if rnd.random() < 0.01:
                time.sleep(0.0005)

    async def getter():
        while True:
            delivered.append(await q.async_get())

    async def main():
        rnd = random.Random(2)
        t = threading.Thread(target=produce)
        t.start()
        tasks = [asyncio.ensure_future(getter()) for _ in range(8)]
        cancels = 0
        while cancels < 10000:
            await asyncio.sleep(0) if rnd.random() < 0.7 else None
            i = rnd.randrange(len(tasks))
            tasks[i].cancel()
            cancels += 1
            try:
                await tasks[i]
            except asyncio.CancelledError:
                pass
            tasks[i] = asyncio.ensure_future(getter())
        await asyncio.get_running_loop().run_in_executor(None, t.join)
        while len(delivered) + q.qsize() < total:
            await asyncio.sleep(0.01)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    run(main(), timeout=100)
    rest = []
    while q.qsize():
        rest.append(q.get_nowait())
    assert sorted(delivered + rest) == list(range(total))


@pytest.mark.parametrize("name", ["Queue", "SimpleQueue"])
def test_a_woken_then_cancelled_getter_passes_the_wake_on(impl, name):
    from fastq import _aio

    q = make(impl, name)

    async def main():
        first = asyncio.ensure_future(q.async_get())
        second = asyncio.ensure_future(q.async_get())
        await asyncio.sleep(0.01)  # both wait
        q.put("item")
        _aio._wakers[asyncio.get_running_loop()]._readable()  # the loop's wake, now: `first` is woken
        first.cancel()  # before it ran to take the item
        assert await asyncio.wait_for(second, 10) == "item"
        with pytest.raises(asyncio.CancelledError):
            await first

    run(main())


def test_simple_queue_reentrant_put_wakes_a_coroutine(impl):
    """A put from __del__ (GC) in the middle of another put, with a coroutine of another thread's
    loop waiting: the wake is a write() from C, so both puts go in and wake it. (The collector may
    run __del__ before the put of the loop, so the order is not the counter's.)"""
    if impl.is_pure_python:
        pytest.skip("the pure SimpleQueue is not reentrant (as queue.py's)")
    q = impl.SimpleQueue()
    total = 3000
    got = []

    def consumer():
        async def main():
            for _ in range(total):
                got.append(await q.async_get(timeout=30))
        asyncio.run(main())

    t = threading.Thread(target=consumer)
    t.start()
    counter = iter(range(total))

    class Circular:
        def __init__(self):
            self.me = self

        def __del__(self):
            n = next(counter, None)
            if n is not None:
                q.put(n)

    for n in counter:
        obj = Circular()
        q.put(n)
        del obj
        if n % 100 == 0:
            time.sleep(0.001)  # the consumer catches up and waits
    gc.collect()
    t.join(60)
    assert sorted(got) == list(range(total))


def test_several_loops_in_several_threads(impl):
    q = impl.Queue()  # made before any loop exists
    got = []
    lock = threading.Lock()

    def consumer():
        async def main():
            async def one():
                while True:
                    try:
                        item = await q.async_get()
                    except fastq.ShutDown:
                        return
                    with lock:
                        got.append(item)
            await asyncio.gather(*(one() for _ in range(3)))
        asyncio.run(main())

    threads = [threading.Thread(target=consumer) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(3000):
        q.put(i)
    q.shutdown()
    for t in threads:
        t.join(60)
        assert not t.is_alive()
    assert sorted(got) == list(range(3000))


def test_closed_loop_with_a_waiter_pending(impl):
    q = impl.Queue()
    loop = asyncio.new_event_loop()
    task = loop.create_task(q.async_get())
    loop.run_until_complete(asyncio.sleep(0.01))
    loop.close()  # the task is left waiting
    q.put(1)  # must not write into a file that reused the loop's fd, nor fail
    del task, loop
    gc.collect()
    q.put(2)
    assert asyncio.run(q.async_get(timeout=5)) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_fork_with_a_waiter_registered(impl):
    q = impl.Queue()
    r, w = os.pipe()

    async def main():
        waiter = asyncio.ensure_future(q.async_get())
        await asyncio.sleep(0.01)
        pid = os.fork()
        if pid == 0:  # the child: its copy of the queue no longer names the parent's loop
            code = 1
            try:
                q.put("child")
                code = 0 if asyncio.run(q.async_get(timeout=5)) == "child" else 2
            finally:
                os._exit(code)
        loop = asyncio.get_running_loop()
        _, status = await loop.run_in_executor(None, os.waitpid, pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert not waiter.done()  # the child's put went to the child's queue
        q.put("parent")
        assert await asyncio.wait_for(waiter, 10) == "parent"

    os.close(r)
    os.close(w)
    run(main())


def test_a_loop_that_cannot_watch_fds(impl):
    class NoReaders(asyncio.SelectorEventLoop):  # as Windows' proactor loop: no add_reader
        def add_reader(self, *args):
            raise NotImplementedError

    q = impl.Queue()
    loop = NoReaders()
    try:
        threading.Timer(0.05, q.put, args=(1,)).start()
        assert loop.run_until_complete(q.async_get(timeout=30)) == 1
        with pytest.raises(fastq.EmptyTimeout):
            loop.run_until_complete(q.async_get(timeout=0.02))
    finally:
        loop.close()


# ---- ProcessQueue and IterableQueue ----

def _produce(q, n, delay):
    for i in range(n):
        q.put(i)
        if delay and i % 50 == 0:
            time.sleep(delay)


def _produce_endpoint(producer, n):
    for i in range(n):
        producer.put(i)
    producer.close()


def _put_forever(q, k):
    i = 0
    while True:
        q.put((k, i, b"x" * 700))
        i += 1


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_process_to_coroutine(impl, method):
    api = impl.process_api
    ctx = multiprocessing.get_context(method)
    q = api.ProcessQueue(ctx=ctx) if impl.is_pure_python else api.ProcessQueue()
    p = ctx.Process(target=_produce, args=(q, 500, 0.002))

    async def main():
        p.start()
        got = [await q.async_get(timeout=30) for _ in range(500)]
        with pytest.raises(fastq.EmptyTimeout):
            await q.async_get(timeout=0.05)
        return got

    assert run(main()) == list(range(500))
    p.join(30)
    assert p.exitcode == 0


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_iterable_queue_process_to_coroutine(impl, method):
    api = impl.process_api
    ctx = multiprocessing.get_context(method)
    iq = api.IterableQueue(ctx=ctx) if impl.is_pure_python else api.IterableQueue()
    procs = [ctx.Process(target=_produce_endpoint, args=(iq.get_producer(), 100)) for _ in range(3)]
    iq.close()
    consumer = iq.get_consumer()

    async def main():
        for p in procs:
            p.start()
        return [item async for item in consumer]

    assert sorted(run(main())) == sorted(list(range(100)) * 3)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0


def test_process_queue_one_thread_per_loop_and_shutdown(impl):
    q = impl.process_api.ProcessQueue()

    async def main():
        waiters = [asyncio.ensure_future(q.async_get()) for _ in range(50)]
        await asyncio.sleep(0.1)
        assert sum(t.name == f"fastq-aio-waiter-{id(q):x}" for t in threading.enumerate()) == 1
        for i in range(10):
            q.put(i)
        for _ in range(1000):
            if sum(w.done() for w in waiters) >= 10:
                break
            await asyncio.sleep(0.01)
        q.shutdown()
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert sorted(r for r in results if isinstance(r, int)) == list(range(10))
        assert all(isinstance(r, fastq.ShutDown) for r in results if not isinstance(r, int))

    run(main())


def test_process_queue_bounded_async_put(impl):
    q = impl.process_api.ProcessQueue(maxsize=2)

    async def main():
        await q.async_put(1)
        await q.async_put(2)
        with pytest.raises(fastq.FullTimeout):
            await q.async_put(3, timeout=0.05)
        putter = asyncio.ensure_future(q.async_put(3))
        await asyncio.sleep(0.05)
        assert not putter.done()
        assert q.get(timeout=5) == 1
        await asyncio.wait_for(putter, 10)
        assert await q.async_get_many(5, timeout=5) in ([2, 3], [2])

    run(main())


def test_process_queue_random_cancellations_lose_nothing(impl):
    api = impl.process_api
    ctx = multiprocessing.get_context("fork")
    q = api.ProcessQueue(ctx=ctx) if impl.is_pure_python else api.ProcessQueue()
    total = 3000
    p = ctx.Process(target=_produce, args=(q, total, 0.001))
    delivered = []

    async def getter():
        while True:
            delivered.append(await q.async_get())

    async def main():
        rnd = random.Random(3)
        p.start()
        tasks = [asyncio.ensure_future(getter()) for _ in range(4)]
        for _ in range(1000):
            await asyncio.sleep(rnd.random() * 0.002)
            i = rnd.randrange(len(tasks))
            tasks[i].cancel()
            await asyncio.gather(tasks[i], return_exceptions=True)
            tasks[i] = asyncio.ensure_future(getter())
        while len(delivered) < total:
            await asyncio.sleep(0.01)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    run(main(), timeout=100)
    p.join(30)
    assert sorted(delivered) == list(range(total))


def test_closed_loop_with_a_process_queue_waiter(impl):
    q = impl.process_api.ProcessQueue()
    loop = asyncio.new_event_loop()
    task = loop.create_task(q.async_get())
    loop.run_until_complete(asyncio.sleep(0.05))
    loop.close()  # its waiter thread finds the loop closed at its next wake and ends
    q.put(1)
    del task, loop
    gc.collect()
    assert asyncio.run(q.async_get(timeout=10)) == 1


def test_process_queue_async_for_until_shutdown_and_drained(impl):
    q = impl.process_api.ProcessQueue()

    async def main():
        threading.Timer(0.05, lambda: (q.put_many(range(3)), q.shutdown())).start()
        return [item async for item in q]

    assert run(main()) == [0, 1, 2]


def test_process_queue_closed_while_a_coroutine_awaits(impl):
    q = impl.process_api.ProcessQueue()

    async def main():
        waiter = asyncio.ensure_future(q.async_get())
        await asyncio.sleep(0.05)
        threading.Thread(target=q.close).start()
        with pytest.raises(ValueError):  # as get() on a closed queue
            await asyncio.wait_for(waiter, 10)

    run(main())


def _consume_count(q, n, out):
    got = [q.get(timeout=30) for _ in range(n)]
    out.put([i for i, _ in got])


def test_coroutine_to_process_through_a_ring_full_by_bytes(impl):
    """maxsize far above what the ring holds: async_put waits for bytes, not count."""
    api = impl.process_api
    ctx = multiprocessing.get_context("fork")
    kwargs = {"ctx": ctx} if impl.is_pure_python else {}
    q = api.ProcessQueue(maxsize=1000, capacity=4096, **kwargs)
    out = ctx.Queue()
    p = ctx.Process(target=_consume_count, args=(q, 200, out))

    async def main():
        p.start()
        for i in range(200):
            await q.async_put((i, b"x" * 1000), timeout=30)

    run(main())
    assert out.get(timeout=30) == list(range(200))
    p.join(30)


def test_sigkilled_producers_while_a_coroutine_awaits(impl):
    """Producers killed at random moments of a stream of puts into a small ring (so often inside
    a put, holding a record or waiting for room): the awaiting coroutine gets what they published,
    then the next item, and never hangs."""
    if impl.is_pure_python:
        pytest.skip("crash tolerance is the C core's promise (docs/design/ARCHITECTURE.md)")
    q = impl.process_api.ProcessQueue(capacity=4096)
    # forkserver: this process has threads (the loop's waiter, the executor's, the putter) that
    # start and end around each start(), and a fork then can leave the child a malloc lock held
    # for good (seen with gcc 12's ASan runtime, which has no fork handler: the child hung in
    # its first put's malloc)
    ctx = multiprocessing.get_context("forkserver")
    rnd = random.Random(4)

    async def main():
        for k in range(5):
            p = ctx.Process(target=_put_forever, args=(q, k))
            p.start()
            seen = [await q.async_get(timeout=30) for _ in range(rnd.randrange(1, 40))]
            os.kill(p.pid, signal.SIGKILL)
            await asyncio.get_running_loop().run_in_executor(None, p.join)
            while True:  # what it published before dying
                try:
                    seen.append(await q.async_get(timeout=0.3))
                except fastq.EmptyTimeout:
                    break
            assert [i for _, i, _ in seen] == list(range(len(seen)))  # in order, none twice
            waiter = asyncio.ensure_future(q.async_get(timeout=30))
            await asyncio.sleep(0.02)
            putter = threading.Thread(target=q.put, args=(("alive", k),))
            putter.start()
            assert await waiter == ("alive", k)
            putter.join()

    run(main(), timeout=100)
