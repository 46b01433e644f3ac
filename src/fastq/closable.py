"""ClosableQueue and StoppableWorker: a Queue that can be closed and iterated, and a thread that
drains one into another (Effective Python's pipeline, on fastq's cores).

The logic lives once, in the _Closable mixin; each namespace composes it with its core's Queue:
fastq.closable.ClosableQueue with fastq.Queue (the C core where built), fastq.pure.closable's with
the pure Queue. StoppableWorker uses no core: both namespaces share it.
"""
from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, Protocol, SupportsIndex, TypeVar

from . import Queue
from .errors import Closed, ShutDown

if TYPE_CHECKING:  # Any where a constructor call does not say which (a PEP 696 default: no annotation needed)
    import typing_extensions

    _T = typing_extensions.TypeVar("_T", default=Any)
    _R = typing_extensions.TypeVar("_R", default=Any)
else:
    _T = TypeVar("_T")
    _R = TypeVar("_R")

if TYPE_CHECKING:
    # What the mixin relies on: the Queue interface, which each ClosableQueue adds by its core's
    # Queue (fastq.Queue here, the pure one in fastq.pure.closable). At run time it stands alone.
    _QueueInterface = Queue
else:
    _QueueInterface = Generic


def _as_closed(exc: ShutDown, name: str) -> Closed:
    """The Closed to raise for a ShutDown from `name` (a put_many's count of inserted items kept)."""
    if isinstance(exc, Closed):
        return exc
    err = Closed(f"{name}() on a closed queue")
    if hasattr(exc, "inserted"):
        err.inserted = exc.inserted  # type: ignore[attr-defined]
    return err


class _Closable(_QueueInterface[_T]):
    """A Queue with close(). Iterating it yields items until it is closed and drained, calling
    task_done() for each item when the loop asks for the next one. put() after close() raises
    Closed; so does get() once the queue is closed and drained. Closed is a ShutDown: close() is
    shutdown(immediate=False)."""

    __slots__ = ()

    def close(self) -> None:
        """No more items will be put; consumers drain what is queued, then stop."""
        self.shutdown(immediate=False)

    @property
    def closed(self) -> bool:
        return self.is_shutdown

    def put(self, item: _T, block: bool = True, timeout: float | None = None) -> None:
        try:
            return super().put(item, block, timeout)
        except ShutDown as exc:
            raise _as_closed(exc, "put") from None

    def get(self, block: bool = True, timeout: float | None = None) -> _T:
        try:
            return super().get(block, timeout)
        except ShutDown as exc:
            raise _as_closed(exc, "get") from None

    def put_many(self, items: Iterable[_T], block: bool = True, timeout: float | None = None) -> None:
        try:
            return super().put_many(items, block, timeout)
        except ShutDown as exc:
            raise _as_closed(exc, "put_many") from None

    def get_many(self, max_items: SupportsIndex, block: bool = True, timeout: float | None = None) -> list[_T]:
        try:
            return super().get_many(max_items, block, timeout)
        except ShutDown as exc:
            raise _as_closed(exc, "get_many") from None

    def put_nowait(self, item: _T) -> None:
        return self.put(item, False)

    def get_nowait(self) -> _T:
        return self.get(False)

    def __iter__(self) -> Iterator[_T]:
        while True:
            try:
                item = self.get()
            except ShutDown:  # Closed included
                return
            try:
                yield item
            finally:
                self.task_done()

    async def __aiter__(self) -> AsyncIterator[_T]:  # type: ignore[override]
        """As iteration, awaiting items (fastq extra)."""
        while True:
            try:
                item = await self.async_get()
            except ShutDown:
                return
            try:
                yield item
            finally:
                self.task_done()


del _QueueInterface  # (a type checker's view only: not part of the module)


class ClosableQueue(_Closable[_T], Queue[_T]):
    __doc__ = _Closable.__doc__


_T_co = TypeVar("_T_co", covariant=True)
_T_contra = TypeVar("_T_contra", contravariant=True)


class ClosableSource(Protocol[_T_co]):
    """What a StoppableWorker reads: iterable until the stream ends, with get() (a ClosableQueue,
    an IterableQueue consumer)."""

    def get(self) -> _T_co: ...
    def __iter__(self) -> Iterator[_T_co]: ...


class ClosableSink(Protocol[_T_contra]):
    """What a StoppableWorker feeds and closes at the end: put() and close() (a ClosableQueue, an
    IterableQueue producer)."""

    def put(self, item: _T_contra) -> None: ...
    def close(self) -> None: ...


class StoppableWorker(threading.Thread, Generic[_T, _R]):
    """A daemon thread that puts func(item) on `out_queue` for every item of the closable
    `in_queue` until it is closed and drained. When the last worker feeding `out_queue`
    finishes, it closes `out_queue`, so closing the head of a pipeline stops every stage."""

    _feeding: dict[int, int] = {}  # id(out_queue) -> number of running workers that feed it
    _feeding_lock = threading.Lock()

    def __init__(self, func: Callable[[_T], _R], in_queue: ClosableSource[_T], out_queue: ClosableSink[_R],
                 **thread_kwargs: Any) -> None:
        if not callable(func):
            raise TypeError(f"StoppableWorker needs a callable func, not {type(func).__name__!r}")
        for role, queue, needs in (("in_queue", in_queue, ("get", "__iter__")), ("out_queue", out_queue, ("put", "close"))):
            missing = [name for name in needs if not callable(getattr(queue, name, None))]
            if missing:
                raise TypeError(f"StoppableWorker's {role} must be a ClosableQueue (it has no {missing[0]}()), "
                                f"not {type(queue).__name__!r}")
        if in_queue is out_queue:  # type: ignore[comparison-overlap]  # (one object can be both)
            raise ValueError("StoppableWorker's in_queue and out_queue are the same queue: it would feed itself forever")
        if getattr(out_queue, "closed", False):
            raise ValueError("StoppableWorker's out_queue is closed already: nothing could be put on it")
        thread_kwargs.setdefault("daemon", True)
        super().__init__(**thread_kwargs)
        self.func = func
        self.in_queue = in_queue
        self.out_queue = out_queue

    def start(self) -> None:
        with self._feeding_lock:
            key = id(self.out_queue)
            self._feeding[key] = self._feeding.get(key, 0) + 1
        super().start()

    def run(self) -> None:
        try:
            for item in self.in_queue:
                self.out_queue.put(self.func(item))
        finally:
            with self._feeding_lock:
                key = id(self.out_queue)
                self._feeding[key] -= 1
                last = self._feeding[key] == 0
                if last:
                    del self._feeding[key]
            if last:
                self.out_queue.close()


__all__ = ["ClosableQueue", "StoppableWorker"]
