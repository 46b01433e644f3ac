"""Pure-Python twin of the in-process Queue family: the `queue` module's algorithm, plus
shutdown() on every Python, put_many() and get_many().

The module-level helpers take the queue as their first argument, so that the C core can run
this exact algorithm on its own objects when a subclass overrides _init/_qsize/_put/_get.
"""
from __future__ import annotations

import os
import threading
from collections import deque
from heapq import heappop, heappush
from operator import index
from time import monotonic

from ..errors import Empty, Full, ShutDown

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs `import fastq` as much again: fastq/_typing.py
    from collections.abc import AsyncIterator, Coroutine, Iterable
    from typing import Any, Generic, SupportsIndex, TypeVar

    import typing_extensions

    _T = typing_extensions.TypeVar("_T", default=Any)  # the item type; Any where `Queue()` does not say (PEP 696)
else:
    from .._typing import Generic, TypeVar

    _T = TypeVar("_T")
_E = TypeVar("_E", bound=BaseException)

_NEGATIVE_TIMEOUT = "'timeout' must be a non-negative number"


def _aio() -> Any:
    from .. import _aio  # (asyncio loads with it: on first use, not at `import fastq`)

    return _aio


def _check_timeout(block: bool, timeout: float | None) -> None:
    if block and timeout is not None and timeout < 0:
        raise ValueError(_NEGATIVE_TIMEOUT)


def _max_items(max_items: SupportsIndex) -> int:
    n = index(max_items)
    if n < 1:
        raise ValueError("'max_items' must be at least 1")
    return n


def _with_inserted(exc: _E, inserted: int) -> _E:
    exc.inserted = inserted  # type: ignore[attr-defined]
    return exc


def _watch(obj: Any, method: str, fd: int, delta: int) -> None:
    """Make obj.<method> (a condition's notify, a semaphore's release) also write to `fd` while it
    has registrations: how an event loop waiting on a pure queue hears its puts (fastq/_aio.py).
    An instance attribute shadows the method only while some loop watches, so an unwatched queue
    pays nothing."""
    with _watch_lock:  # loops in several threads may register at once
        _watch_locked(obj, method, fd, delta)


def _watch_locked(obj: Any, method: str, fd: int, delta: int) -> None:
    fds: dict[int, int] = obj.__dict__.get("_fastq_fds") or {}
    refs = fds.get(fd, 0) + delta
    if refs > 0:
        fds[fd] = refs
    else:
        fds.pop(fd, None)
    if not fds:
        obj.__dict__.pop("_fastq_fds", None)
        obj.__dict__.pop(method, None)
        return
    if "_fastq_fds" not in obj.__dict__:
        obj._fastq_fds = fds
        plain = getattr(type(obj), method).__get__(obj)

        def notify(*args: Any) -> Any:
            result = plain(*args)
            _write_wakes(fds)
            return result

        setattr(obj, method, notify)


def _write_wakes(fds: dict[int, int]) -> None:
    for fd in list(fds):
        try:
            os.write(fd, _ONE)
        except OSError:  # full: a wake is pending already
            pass


_watch_lock = threading.Lock()
_ONE = (1).to_bytes(8, "little")  # an eventfd adds 1; a pipe just gets readable


def _wait_not_empty(q: Queue[Any], block: bool, timeout: float | None) -> None:
    """With q.mutex held: return once q holds an item, or raise Empty or ShutDown."""
    if not block:
        raise Empty
    if timeout is None:
        while not q._qsize():
            q.not_empty.wait()
            if q.is_shutdown and not q._qsize():
                raise ShutDown
        return
    endtime = monotonic() + timeout
    while not q._qsize():
        remaining = endtime - monotonic()
        if remaining <= 0.0:
            raise Empty
        q.not_empty.wait(remaining)
        if q.is_shutdown and not q._qsize():
            raise ShutDown


def _wait_not_full(q: Queue[Any], block: bool, endtime: float | None) -> None:
    """With q.mutex held: return once q has room, or raise Full or ShutDown.
    `endtime` is a monotonic deadline, or None for no limit."""
    if not block:
        raise Full
    while q._qsize() >= q.maxsize:
        if endtime is None:
            q.not_full.wait()
        else:
            remaining = endtime - monotonic()
            if remaining <= 0.0:
                raise Full
            q.not_full.wait(remaining)
        if q.is_shutdown:
            raise ShutDown


class Queue(Generic[_T]):
    """Create a queue object with a given maximum size.

    If maxsize is <= 0, the queue size is infinite.
    """

    queue: Any  # a deque here, a list in LifoQueue and PriorityQueue, whatever an overridden _init stores

    def __init__(self, maxsize: int = 0) -> None:
        self.maxsize = maxsize
        self._init(maxsize)
        # One mutex shared by the three conditions: hold it while the queue mutates.
        self.mutex = threading.Lock()
        self.not_empty = threading.Condition(self.mutex)
        self.not_full = threading.Condition(self.mutex)
        self.all_tasks_done = threading.Condition(self.mutex)
        self.unfinished_tasks = 0
        self.is_shutdown = False

    def task_done(self) -> None:
        """Indicate that a formerly enqueued task is complete.

        Used by Queue consumer threads.  For each get() used to fetch a task,
        a subsequent call to task_done() tells the queue that the processing
        on the task is complete.

        If a join() is currently blocking, it will resume when all items
        have been processed (meaning that a task_done() call was received
        for every item that had been put() into the queue).

        shutdown(immediate=True) calls task_done() for each remaining item in
        the queue.

        Raises a ValueError if called more times than there were items
        placed in the queue.
        """
        with self.all_tasks_done:
            unfinished = self.unfinished_tasks - 1
            if unfinished <= 0:
                if unfinished < 0:
                    raise ValueError("task_done() called too many times")
                self.all_tasks_done.notify_all()
            self.unfinished_tasks = unfinished

    def join(self) -> None:
        """Blocks until all items in the Queue have been gotten and processed.

        The count of unfinished tasks goes up whenever an item is added to the
        queue. The count goes down whenever a consumer thread calls task_done()
        to indicate the item was retrieved and all work on it is complete.

        When the count of unfinished tasks drops to zero, join() unblocks.
        """
        with self.all_tasks_done:
            while self.unfinished_tasks:
                self.all_tasks_done.wait()

    def qsize(self) -> int:
        """Return the approximate size of the queue (not reliable!)."""
        with self.mutex:
            return self._qsize()

    def empty(self) -> bool:
        """Return True if the queue is empty, False otherwise (not reliable!)."""
        with self.mutex:
            return not self._qsize()

    def full(self) -> bool:
        """Return True if the queue is full, False otherwise (not reliable!)."""
        with self.mutex:
            return 0 < self.maxsize <= self._qsize()

    def put(self, item: _T, block: bool = True, timeout: float | None = None) -> None:
        """Put an item into the queue.

        If optional args 'block' is true and 'timeout' is None (the default),
        block if necessary until a free slot is available. If 'timeout' is
        a non-negative number, it blocks at most 'timeout' seconds and raises
        the Full exception if no free slot was available within that time.
        Otherwise ('block' is false), put an item on the queue if a free slot
        is immediately available, else raise the Full exception ('timeout'
        is ignored in that case).

        Raises ShutDown if the queue has been shut down.
        """
        with self.not_full:
            if self.is_shutdown:
                raise ShutDown
            if self.maxsize > 0:
                endtime: float | None = None
                if block and timeout is not None:
                    if timeout < 0:
                        raise ValueError(_NEGATIVE_TIMEOUT)
                    endtime = monotonic() + timeout
                if self._qsize() >= self.maxsize:
                    _wait_not_full(self, block, endtime)
            self._put(item)
            self.unfinished_tasks += 1
            self.not_empty.notify()

    def get(self, block: bool = True, timeout: float | None = None) -> _T:
        """Remove and return an item from the queue.

        If optional args 'block' is true and 'timeout' is None (the default),
        block if necessary until an item is available. If 'timeout' is
        a non-negative number, it blocks at most 'timeout' seconds and raises
        the Empty exception if no item was available within that time.
        Otherwise ('block' is false), return an item if one is immediately
        available, else raise the Empty exception ('timeout' is ignored
        in that case).

        Raises ShutDown if the queue has been shut down and is empty,
        or if the queue has been shut down immediately.
        """
        with self.not_empty:
            if not self._qsize():
                if self.is_shutdown:
                    raise ShutDown
                _check_timeout(block, timeout)
                _wait_not_empty(self, block, timeout)
            elif timeout is not None and block and timeout < 0:  # inline: the hot path
                raise ValueError(_NEGATIVE_TIMEOUT)
            item = self._get()
            if self.maxsize > 0:  # unbounded, no put ever waits (it would wait forever in queue.py too)
                self.not_full.notify()
            return item

    def put_nowait(self, item: _T) -> None:
        """Put an item into the queue without blocking.

        Only enqueue the item if a free slot is immediately available.
        Otherwise raise the Full exception.
        """
        return self.put(item, block=False)

    def get_nowait(self) -> _T:
        """Remove and return an item from the queue without blocking.

        Only get an item if one is immediately available. Otherwise
        raise the Empty exception.
        """
        return self.get(block=False)

    def put_many(self, items: Iterable[_T], block: bool = True, timeout: float | None = None) -> None:
        """Put every item of `items`, in order (fastq extra).

        Blocks as put() does while the queue is full. If it times out (or, with block false,
        finds no room), it raises Full after inserting a prefix; the exception's `inserted`
        attribute says how many went in. Raises ShutDown (also with `inserted`) if the queue
        is or gets shut down.
        """
        items = list(items)  # a failing iterable raises before anything is queued
        endtime: float | None
        _check_timeout(block, timeout)
        endtime = None if timeout is None or not block else monotonic() + timeout
        inserted = 0
        with self.not_full:
            while inserted < len(items):
                if self.is_shutdown:
                    raise _with_inserted(ShutDown(), inserted)
                room = len(items) - inserted
                if self.maxsize > 0:
                    room = min(room, self.maxsize - self._qsize())
                    if room <= 0:
                        try:
                            _wait_not_full(self, block, endtime)
                        except (Full, ShutDown) as exc:
                            raise _with_inserted(exc, inserted) from None
                        continue
                first = inserted
                try:
                    for item in items[inserted:inserted + room]:
                        self._put(item)
                        self.unfinished_tasks += 1
                        inserted += 1
                finally:  # a failing _put (e.g. an incomparable item) must not strand getters
                    self.not_empty.notify(inserted - first)

    def get_many(self, max_items: SupportsIndex, block: bool = True, timeout: float | None = None) -> list[_T]:
        """Remove and return a list of up to `max_items` items (fastq extra).

        Waits, as get() does, only for the first item; then takes what is there.
        If _get() fails after the first item (a subclass hook), the items already
        taken are returned rather than lost; the failure of the first one is raised.
        """
        n = _max_items(max_items)
        with self.not_empty:
            if not self._qsize():
                if self.is_shutdown:
                    raise ShutDown
                _check_timeout(block, timeout)
                _wait_not_empty(self, block, timeout)
            else:
                _check_timeout(block, timeout)
            items = [self._get()]
            try:
                for _ in range(min(n - 1, self._qsize())):
                    items.append(self._get())
            except Exception:
                pass  # keep what was taken: the caller gets it, the queue keeps the rest
            finally:
                self.not_full.notify(len(items))
            return items

    def shutdown(self, immediate: bool = False) -> None:
        """Shut-down the queue, making queue gets and puts raise ShutDown.

        By default, gets will only raise once the queue is empty. Set
        'immediate' to True to make gets raise immediately instead.

        All blocked callers of put() and get() will be unblocked. If
        'immediate', a task is marked as done for each item remaining in
        the queue, which may unblock callers of join().
        """
        with self.mutex:
            self.is_shutdown = True
            if immediate:
                while self._qsize():
                    self._get()
                    if self.unfinished_tasks > 0:
                        self.unfinished_tasks -= 1
                self.all_tasks_done.notify_all()
            self.not_empty.notify_all()
            self.not_full.notify_all()

    # ---- asyncio (fastq/_aio.py) ----

    def _async_watch(self, which: int, fd: int, delta: int) -> None:
        _watch(self.not_full if which else self.not_empty, "notify", fd, delta)

    def async_get(self, timeout: float | None = None) -> Coroutine[Any, Any, _T]:
        """Remove and return an item, awaiting one at most `timeout` seconds (fastq extra);
        see fastq/_aio.py."""
        return _aio().get(self, timeout)

    def async_put(self, item: _T, timeout: float | None = None) -> Coroutine[Any, Any, None]:
        """Put an item, awaiting a free slot at most `timeout` seconds (fastq extra)."""
        return _aio().put(self, item, timeout)

    def async_get_many(self, max_items: SupportsIndex, timeout: float | None = None) -> Coroutine[Any, Any, list[_T]]:
        """Remove and return up to `max_items` items, awaiting only the first (fastq extra)."""
        return _aio().get_many(self, max_items, timeout)

    def __aiter__(self) -> AsyncIterator[_T]:
        """Items until the queue is shut down and drained (fastq extra)."""
        return _aio().iterate(self)

    # Override these methods to implement other queue organizations
    # (e.g. stack or priority queue). They are called with the mutex held.

    def _init(self, maxsize: int) -> None:
        self.queue = deque()

    def _qsize(self) -> int:
        return len(self.queue)

    def _put(self, item: _T) -> None:
        self.queue.append(item)

    def _get(self) -> _T:
        return self.queue.popleft()  # type: ignore[no-any-return]


class PriorityQueue(Queue[_T]):
    """Variant of Queue that retrieves open entries in priority order (lowest first).

    Entries are typically tuples of the form:  (priority number, data).
    """

    def _init(self, maxsize: int) -> None:
        self.queue = []

    def _qsize(self) -> int:
        return len(self.queue)

    def _put(self, item: _T) -> None:
        heappush(self.queue, item)

    def _get(self) -> _T:
        return heappop(self.queue)  # type: ignore[no-any-return]


class LifoQueue(Queue[_T]):
    """Variant of Queue that retrieves most recently added entries first."""

    def _init(self, maxsize: int) -> None:
        self.queue = []

    def _qsize(self) -> int:
        return len(self.queue)

    def _put(self, item: _T) -> None:
        self.queue.append(item)

    def _get(self) -> _T:
        return self.queue.pop()  # type: ignore[no-any-return]


class SimpleQueue(Generic[_T]):
    """Simple, unbounded FIFO queue.

    This pure Python implementation is not reentrant.
    """

    def __init__(self) -> None:
        self._queue: deque[_T] = deque()
        self._count = threading.Semaphore(0)

    def put(self, item: _T, block: bool = True, timeout: float | None = None) -> None:
        """Put the item on the queue.

        The optional 'block' and 'timeout' arguments are ignored, as this method
        never blocks.  They are provided for compatibility with the Queue class.
        """
        self._queue.append(item)
        self._count.release()

    def get(self, block: bool = True, timeout: float | None = None) -> _T:
        """Remove and return an item from the queue.

        If optional args 'block' is true and 'timeout' is None (the default),
        block if necessary until an item is available. If 'timeout' is
        a non-negative number, it blocks at most 'timeout' seconds and raises
        the Empty exception if no item was available within that time.
        Otherwise ('block' is false), return an item if one is immediately
        available, else raise the Empty exception ('timeout' is ignored
        in that case).
        """
        _check_timeout(block, timeout)
        if not self._count.acquire(block, timeout if block else None):  # timeout ignored unless blocking
            raise Empty
        return self._queue.popleft()

    def put_nowait(self, item: _T) -> None:
        """Put an item into the queue without blocking.

        This is exactly equivalent to `put(item, block=False)` and is only provided
        for compatibility with the Queue class.
        """
        return self.put(item, block=False)

    def get_nowait(self) -> _T:
        """Remove and return an item from the queue without blocking.

        Only get an item if one is immediately available. Otherwise
        raise the Empty exception.
        """
        return self.get(block=False)

    def put_many(self, items: Iterable[_T], block: bool = True, timeout: float | None = None) -> None:
        """Put every item of `items`, in order; never blocks (fastq extra)."""
        items = list(items)
        self._queue.extend(items)
        if items:
            self._count.release(len(items))

    def get_many(self, max_items: SupportsIndex, block: bool = True, timeout: float | None = None) -> list[_T]:
        """Remove and return a list of up to `max_items` items, waiting only for the first (fastq extra)."""
        limit = _max_items(max_items)
        _check_timeout(block, timeout)
        if not self._count.acquire(block, timeout if block else None):  # timeout ignored unless blocking
            raise Empty
        n = 1
        while n < limit and self._count.acquire(False):
            n += 1
        popleft = self._queue.popleft
        return [popleft() for _ in range(n)]

    def empty(self) -> bool:
        """Return True if the queue is empty, False otherwise (not reliable!)."""
        return len(self._queue) == 0

    def _async_watch(self, which: int, fd: int, delta: int) -> None:
        _watch(self._count, "release", fd, delta)

    def async_get(self, timeout: float | None = None) -> Coroutine[Any, Any, _T]:
        """Remove and return an item, awaiting one at most `timeout` seconds (fastq extra)."""
        return _aio().get(self, timeout)

    async def async_put(self, item: _T, timeout: float | None = None) -> None:
        """Put the item on the queue; never waits (fastq extra)."""
        self.put(item)

    def async_get_many(self, max_items: SupportsIndex, timeout: float | None = None) -> Coroutine[Any, Any, list[_T]]:
        """Remove and return up to `max_items` items, awaiting only the first (fastq extra)."""
        return _aio().get_many(self, max_items, timeout)

    def __aiter__(self) -> AsyncIterator[_T]:
        """Items, for ever (a SimpleQueue cannot be shut down) (fastq extra)."""
        return _aio().iterate(self)

    def qsize(self) -> int:
        """Return the approximate size of the queue (not reliable!)."""
        return len(self._queue)
