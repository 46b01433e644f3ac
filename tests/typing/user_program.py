"""A user's program over fastq's whole public API, used correctly: `mypy --strict` must pass it
with no error (tests/typing/check.py), and it runs (tests/test_typing.py runs main()).

Each annotation states what the stubs and annotations must give, so a type that went wrong
(an Any, a missing generic, a wrong return) makes mypy fail here.
"""
from __future__ import annotations

import asyncio
import pickle
import queue
import threading
from collections.abc import Iterator

import fastq
import fastq.dask
import fastq.pure
from fastq.iterable import Consumer, Producer


def in_process_queues() -> None:
    q: fastq.Queue[int] = fastq.Queue(maxsize=10)
    q.put(1)
    q.put(2, block=True, timeout=1.0)
    q.put_nowait(3)
    q.put_many([4, 5], timeout=0.5)
    first: int = q.get()
    rest: list[int] = q.get_many(10, block=False)
    assert first == 1 and rest == [2, 3, 4, 5]
    for _ in range(5):
        q.task_done()
    q.join()
    size: int = q.qsize()
    empty: bool = q.empty()
    full: bool = q.full()
    maxsize: int = q.maxsize
    assert (size, empty, full, maxsize, q.unfinished_tasks) == (0, True, False, 10, 0)
    with q.mutex:
        pass
    with q.not_empty:
        q.not_empty.notify()
    try:
        q.get_nowait()
    except fastq.Empty:
        pass
    q.shutdown(immediate=False)
    try:
        q.put(6)
    except fastq.ShutDown:
        assert q.is_shutdown

    lifo: fastq.LifoQueue[str] = fastq.LifoQueue()
    lifo.put_many(["a", "b"])
    top: str = lifo.get()
    assert top == "b"
    heap: fastq.PriorityQueue[tuple[int, str]] = fastq.PriorityQueue()
    heap.put((2, "two"))
    heap.put((1, "one"))
    priority, name = heap.get()
    assert (priority + 0, name.upper()) == (1, "ONE")
    simple: fastq.SimpleQueue[bytes] = fastq.SimpleQueue()
    simple.put(b"x")
    simple.put_many([b"y"])
    data: list[bytes] = simple.get_many(2)
    assert data == [b"x", b"y"] and simple.empty() and simple.qsize() == 0

    # as a drop-in, where code wants the `queue` module's exceptions
    try:
        fastq.Queue[float](maxsize=1).get(block=False)
    except queue.Empty:
        pass


class Stack(fastq.Queue[str]):
    """A subclass that overrides the hooks (queue.Queue's own customisation points)."""

    def _init(self, maxsize: int) -> None:
        self.queue = []

    def _put(self, item: str) -> None:
        self.queue.append(item)

    def _get(self) -> str:
        item: str = self.queue.pop()
        return item


def subclassing() -> None:
    stack = Stack()
    stack.put_many(["a", "b"])
    assert stack.get() == "b"


def reorder_buffer() -> None:
    buf: fastq.ReorderBuffer[str] = fastq.ReorderBuffer(8)
    first: int = buf.reserve()
    second = buf.reserve(timeout=1.0)
    buf.put(second, "second")
    buf.put(first, "first")
    out: list[str] = [buf.get(), buf.get(timeout=1.0)]
    assert out == ["first", "second"] and buf.pending == 0 and buf.window == 8
    buf.shutdown()


def process_queue() -> None:
    pq: fastq.ProcessQueue[bytes] = fastq.ProcessQueue(maxsize=100, capacity=1 << 16)
    pq.put(b"one")
    pq.put_many([b"two", b"three"])
    got: bytes = pq.get(timeout=5.0)
    more: list[bytes] = pq.get_many(10)
    assert [got, *more] == [b"one", b"two", b"three"]
    for _ in range(3):
        pq.task_done()
    joined: bool = pq.join(timeout=1.0)
    capacity: int = pq.capacity
    assert joined and capacity >= 1 << 16 and pq.qsize() == 0
    pq.shutdown()
    pq.close()
    pq.join_thread()

    # serializer=: a (dumps, loads) pair in place of pickle
    with_pickle: fastq.ProcessQueue[dict[str, int]] = fastq.ProcessQueue(serializer=(pickle.dumps, pickle.loads))
    with_pickle.put({"a": 1})
    assert with_pickle.get(timeout=5.0)["a"] == 1


def closable_pipeline() -> None:
    source: fastq.ClosableQueue[str] = fastq.ClosableQueue()
    lengths: fastq.ClosableQueue[int] = fastq.ClosableQueue(maxsize=10)
    worker = fastq.StoppableWorker(len, source, lengths)
    worker.start()
    source.put_many(["a", "bb"])
    source.close()
    total = 0
    for n in lengths:  # until closed and drained
        total += n
    worker.join()
    assert total == 3 and source.closed

    head: fastq.ClosableQueue[int] = fastq.ClosableQueue()
    left, right = fastq.multiplex(2, head)
    merged: fastq.ClosableQueue[int] = fastq.merge(left, right, maxsize=4)
    head.put(1)
    head.close()
    assert sorted(merged) == [1, 1]


def iterable_queue() -> None:
    iq: fastq.IterableQueue[int] = fastq.IterableQueue(maxsize=10)
    consumer: Consumer[int] = iq.get_consumer()
    with iq.get_producer() as producer:
        producer.put(1)
        producer.put_many([2, 3])
    iq.close()
    assert list(consumer) == [1, 2, 3]
    try:
        consumer.get(timeout=0.1)
    except fastq.Done:
        pass
    endpoint: Producer[int] | None = None
    assert endpoint is None

    # a StoppableWorker between an IterableQueue's consumer and a ClosableQueue
    stream: fastq.IterableQueue[str] = fastq.IterableQueue()
    upper: fastq.ClosableQueue[str] = fastq.ClosableQueue()
    worker = fastq.StoppableWorker(str.upper, stream.get_consumer(), upper)
    worker.start()
    with stream.get_producer() as producer:
        producer.put("a")
    stream.close()
    worker.join(timeout=10.0)
    assert list(upper) == ["A"]


def square(x: int) -> int:
    return x * x


def parallel() -> None:
    with fastq.ParallelQueue(2, backend="thread", buffer_size=8) as pq:
        pq.put(square, 3)
        pq.put("a marker")  # non-callables pass through in order
        assert pq.get() == 9 and pq.get() == "a marker"
        squares: Iterator[int] = pq.map(square, range(5))
        assert list(squares) == [0, 1, 4, 9, 16]
        named: list[str] = list(pq.map(str.upper, ["a", "b"], chunksize=1))
        assert named == ["A", "B"]
        assert pq.qsize() == 0 and not pq.stopped
    assert not pq.is_alive()

    single = fastq.ParallelSingleTaskQueue(square, 2, backend="thread")
    single.put(4)
    sixteen: int = single.get(timeout=5.0)
    results: list[int] = list(single.map([1, 2]))
    assert sixteen == 16 and results == [1, 4]
    single.stop()
    single.join(timeout=5.0)
    try:
        single.get()
    except fastq.Closed:
        pass


def errors() -> None:
    error = fastq.WorkerError("ZeroDivisionError: division by zero", "Traceback ...")
    text: str = error.traceback
    assert text and str(error)
    for cls in (fastq.Closed, fastq.Done, fastq.WorkerDied, fastq.QueueCorrupted):
        assert issubclass(cls, Exception)
    assert issubclass(fastq.Closed, fastq.ShutDown)


def dask_signatures() -> None:
    # typed only (a dask cluster is tests/test_dask.py's business): any object with get() is a source
    def stream(client: object, source: fastq.Queue[int]) -> fastq.ClosableQueue[object]:
        return fastq.dask.gather(client, fastq.dask.map(client, square, fastq.dask.scatter(client, source)))

    assert callable(stream)


def pure_twins() -> None:
    q: fastq.pure.Queue[int] = fastq.pure.Queue()
    q.put(1)
    one: int = q.get()
    buf: fastq.pure.ReorderBuffer[str] = fastq.pure.ReorderBuffer(2)
    buf.put(buf.reserve(), "x")
    x: str = buf.get()
    closable: fastq.pure.ClosableQueue[int] = fastq.pure.ClosableQueue()
    closable.put(one)
    closable.close()
    assert list(closable) == [1] and x == "x"
    twin: fastq.pure.ProcessQueue[bytes] = fastq.pure.ProcessQueue(capacity=1 << 16)
    twin.put_many([b"a", b"b"])
    ab: list[bytes] = twin.get_many(2, timeout=5.0)
    assert ab == [b"a", b"b"] and twin.join(timeout=0.0) is False
    twin.close()
    twin.join_thread()
    with fastq.pure.ParallelQueue(1, backend="thread") as pq:
        assert list(pq.map(square, [3])) == [9]


def asyncio_face() -> None:
    async def run() -> None:
        q: fastq.Queue[int] = fastq.Queue(maxsize=2)
        await q.async_put(1, timeout=1.0)
        one: int = await q.async_get(timeout=1.0)
        await q.async_put(2)
        many: list[int] = await q.async_get_many(5)
        q.put(3)
        q.shutdown()
        rest: list[int] = [item async for item in q]
        try:
            await fastq.SimpleQueue[str]().async_get(timeout=0.0)
        except fastq.EmptyTimeout as exc:
            timed_out: TimeoutError = exc
            assert isinstance(timed_out, queue.Empty)
        pq: fastq.ProcessQueue[bytes] = fastq.ProcessQueue()
        await pq.async_put(b"x")
        x: bytes = await pq.async_get(timeout=5.0)
        pq.close()
        closable: fastq.ClosableQueue[int] = fastq.ClosableQueue()
        closable.put(4)
        closable.close()
        four: list[int] = [item async for item in closable]
        with fastq.ParallelQueue(1, backend="thread") as parallel:
            squares = [r async for r in parallel.async_map(square, [2])]
        assert (one, many, rest, x, four, squares) == (1, [2], [3], b"x", [4], [4])

    asyncio.run(run())


def about() -> None:
    implementation: str = fastq.IMPLEMENTATION
    implementations: dict[str, str] = fastq.IMPLEMENTATIONS
    version: str = fastq.__version__
    assert implementation in ("c", "python") and implementations["Queue"] == implementation and version


def as_the_readme_writes_it() -> None:
    # no annotations: where a constructor does not say, the items are Any (PEP 696 defaults)
    q = fastq.Queue(maxsize=100)
    q.put(1)
    q.put_many([2, 3, 4])
    assert q.get() == 1 and q.get_many(10) == [2, 3, 4]
    closable = fastq.ClosableQueue()
    closable.close()
    iq = fastq.IterableQueue()
    iq.close()
    assert list(iq.get_consumer()) == [] and list(closable) == []


def main() -> None:
    as_the_readme_writes_it()
    in_process_queues()
    subclassing()
    reorder_buffer()
    process_queue()
    closable_pipeline()
    iterable_queue()
    parallel()
    errors()
    dask_signatures()
    pure_twins()
    asyncio_face()
    about()
    assert threading.active_count() >= 1


if __name__ == "__main__":
    main()
    print("user_program: ok")
