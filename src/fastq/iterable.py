"""IterableQueue: producer and consumer endpoints over a ProcessQueue, across threads and
processes (the iterable-queue package's model).

Producers put() and close(); consumers iterate, or get() raises Done once the queue is drained,
IterableQueue.close() has said no more producers will be made, and no producer is left.
Producers register in the ProcessQueue's segment, so one that dies without close() is noticed
(C core; on the pure core a dead producer is only noticed if it closed). A producer endpoint
inherited through fork takes over the registration at its first put (or close): one killed before
that still counts as its parent until the parent exits. Endpoints are
picklable the way the queue is (to processes being started), and follow their process across a
fork.

The endpoints use no core of their own (they hold the queue): both namespaces share them. The
IterableQueue logic lives once, in the _IterableQueue mixin, whose `_ProcessQueue` attribute names
the core: fastq.ProcessQueue here, the pure one in fastq.pure.iterable.
"""
from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from time import monotonic
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, SupportsIndex, TypeVar

from . import ProcessQueue
from .errors import Closed, Done, Empty

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

if TYPE_CHECKING:  # Any where a constructor call does not say which (a PEP 696 default: no annotation needed)
    import typing_extensions

    _T = typing_extensions.TypeVar("_T", default=Any)
else:
    _T = TypeVar("_T")
_R = TypeVar("_R")
_Token = tuple[int, int]  # a producer's registration in the queue's segment

_RECHECK = 0.05  # seconds between checks for producers that died without closing


class Producer(Generic[_T]):
    """The producing end: put(), put_many(), close() (also as a context manager)."""

    def __init__(self, queue: ProcessQueue[_T], token: _Token) -> None:
        self._queue = queue
        self._token = token
        self._pid = os.getpid()
        self._closed = False

    def _adopt(self) -> None:
        # Running in another process than the one that registered: take the registration.
        # After unpickling (spawn, forkserver) that happens at once; after a fork, at the first
        # put or close (an after-fork hook would run for every producer the parent holds).
        if self._pid != os.getpid() and not self._closed:
            self._token = self._queue._producer_adopt(self._token)
            self._pid = os.getpid()

    def __reduce__(self) -> tuple[Callable[..., "Producer[_T]"], tuple[ProcessQueue[_T], _Token, bool]]:
        return _restore_producer, (self._queue, self._token, self._closed)

    def put(self, item: _T, block: bool = True, timeout: float | None = None) -> None:
        if self._closed:
            raise Closed("put() on a closed producer")
        self._adopt()
        self._queue.put(item, block, timeout)

    def put_many(self, items: Iterable[_T], block: bool = True, timeout: float | None = None) -> None:
        if self._closed:
            raise Closed("put_many() on a closed producer")
        self._adopt()
        self._queue.put_many(items, block, timeout)

    def close(self) -> None:
        """This producer is done; once every producer is, consumers stop."""
        if self._closed:
            return
        self._adopt()
        self._queue._flush_backlog()  # what this process put is on its way first
        self._queue._producer_unregister(self._token)
        self._closed = True

    def __enter__(self) -> "Producer[_T]":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

class Consumer(Generic[_T]):
    """The consuming end: get(), get_many(), iteration until Done."""

    def __init__(self, queue: ProcessQueue[_T]) -> None:
        self._queue = queue

    def __reduce__(self) -> tuple[type["Consumer[_T]"], tuple[ProcessQueue[_T]]]:
        return Consumer, (self._queue,)

    def _finished(self) -> bool:
        q = self._queue  # this order: a producer publishes before it unregisters
        return q._endpoints_closed() and q._producers_alive() == 0 and q._drained()

    def _wait(self, take: Callable[[bool, float], _R], block: bool, timeout: float | None) -> _R:
        if block and timeout is not None and timeout < 0:
            raise ValueError("'timeout' must be a non-negative number")
        deadline = None if timeout is None or not block else monotonic() + timeout
        first = True
        while True:
            wait = _RECHECK if deadline is None else max(0.0, min(_RECHECK, deadline - monotonic()))
            try:
                # first without waiting: a stream that is over ends at once, not a recheck later
                return take(block and not first, wait)
            except Empty:
                first = False
                if self._finished():
                    raise Done from None
                if not block or (deadline is not None and monotonic() >= deadline):
                    raise

    def get(self, block: bool = True, timeout: float | None = None) -> _T:
        """Remove and return an item; raise Done once the stream is over, Empty on a
        timeout while producers remain."""
        return self._wait(self._queue.get, block, timeout)

    def get_many(self, max_items: SupportsIndex, block: bool = True, timeout: float | None = None) -> list[_T]:
        return self._wait(lambda b, t: self._queue.get_many(max_items, b, t), block, timeout)

    def __iter__(self) -> Iterator[_T]:
        while True:
            try:
                yield self.get()
            except Done:
                return

    async def async_get(self, timeout: float | None = None) -> _T:
        """Remove and return an item, awaiting one at most `timeout` seconds; raise Done once the
        stream is over, and on a timeout an exception that is both Empty and TimeoutError."""
        from . import _aio

        return await _aio.take(self.get, self._queue, timeout, _RECHECK)  # type: ignore[no-any-return]

    async def async_get_many(self, max_items: SupportsIndex, timeout: float | None = None) -> list[_T]:
        from . import _aio

        return await _aio.take(lambda block: self.get_many(max_items, block), self._queue, timeout,  # type: ignore[no-any-return]
                               _RECHECK)

    async def __aiter__(self) -> AsyncIterator[_T]:
        """Items until the stream is over (Done)."""
        while True:
            try:
                yield await self.async_get()
            except Done:
                return

# for annotations inside _IterableQueue, whose attributes shadow the names
_Producer = Producer
_Consumer = Consumer


class _IterableQueue(Generic[_T]):
    """A queue of endpoints: get_producer(), get_consumer(), close() (no more endpoints)."""

    Producer = Producer
    Consumer = Consumer
    _ProcessQueue: ClassVar[Callable[..., Any]]  # the core: each IterableQueue names its own

    def __init__(self, maxsize: int = 0, *, capacity: int | None = None, ctx: BaseContext | None = None,
                 named: bool = False,
                 serializer: tuple[Callable[[Any], bytes], Callable[[bytes], Any]] | None = None) -> None:
        """`maxsize` and the keywords are the ProcessQueue's that carries the items."""
        self._queue: ProcessQueue[_T] = self._ProcessQueue(maxsize, capacity=capacity, ctx=ctx, named=named,
                                                           serializer=serializer)

    def get_producer(self) -> _Producer[_T]:
        if self._queue._endpoints_closed():
            raise Closed("get_producer() on a closed IterableQueue")
        return Producer(self._queue, self._queue._producer_register())

    def get_consumer(self) -> _Consumer[_T]:
        return Consumer(self._queue)

    def close(self) -> None:
        """No more producers will be made: consumers stop once the existing ones are done."""
        self._queue._endpoints_close()

    def qsize(self) -> int:
        return self._queue.qsize()


class IterableQueue(_IterableQueue[_T]):
    __doc__ = _IterableQueue.__doc__
    _ProcessQueue = ProcessQueue


def _restore_producer(queue: ProcessQueue[_T], token: _Token, closed: bool) -> Producer[_T]:
    p: Producer[_T] = Producer.__new__(Producer)
    p._queue, p._token, p._pid, p._closed = queue, token, -1, closed
    p._adopt()
    return p


__all__ = ["IterableQueue", "Producer", "Consumer"]
