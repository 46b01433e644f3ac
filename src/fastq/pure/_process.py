"""Pure-Python twin of ProcessQueue: multiprocessing's own JoinableQueue plus fastq's extras.

This is the yardstick for the C ProcessQueue and what users have today: a pipe, a feeder thread and
POSIX semaphores. On top of multiprocessing.JoinableQueue it adds:

- serialization in put(): an unpicklable item raises at the call and leaves the queue unchanged
  (multiprocessing.Queue pickles in its feeder thread and only prints the traceback). The feeder then
  writes the bytes put() already made: it is handed a tiny token per item and takes the real bytes
  from a side deque, so a message is pickled once and copied as often as in multiprocessing.Queue;
- shutdown(immediate=False) with Python 3.13's queue.Queue semantics across processes: the state lives
  in shared memory, and blocked getters and putters wait in short slices that re-check it;
- an exact, shared count of queued items (put minus got, items still in a feeder thread included):
  qsize() works on every platform (multiprocessing's raises NotImplementedError on macOS), empty() is
  True only when nothing is queued anywhere, get() after a non-immediate shutdown keeps waiting for
  items accepted before it, and get_nowait() gives an item that is accepted but still on its way
  through a feeder thread up to _IN_FLIGHT_GRACE seconds to arrive (multiprocessing.Queue raises Empty
  right after its own put());
- put_many(), get_many() and join(timeout) -> bool.

Crash tolerance is the C core's promise, not this one's: a process killed while it holds one of
multiprocessing's locks, or with items in its feeder thread, can hang the others (docs/design/ARCHITECTURE.md).
"""
from __future__ import annotations

import collections
import multiprocessing
import os
import pickle
import multiprocessing.connection
import multiprocessing.queues
import time
from multiprocessing.reduction import ForkingPickler
from operator import index
from time import monotonic

try:
    from select import POLLIN, poll as _select_poll
except ImportError:  # Windows
    _select_poll = None  # type: ignore[misc, assignment]

from .._args import process_queue_args
from ..errors import Empty, Full, ShutDown
from ._queue import _check_timeout, _max_items, _with_inserted

TYPE_CHECKING = False
if TYPE_CHECKING:  # fastq._typing's stand-ins at run time, as the other pure cores
    from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
    from multiprocessing.context import BaseContext
    from typing import Any, Generic, SupportsIndex

    import typing_extensions

    _T = typing_extensions.TypeVar("_T", default=Any)  # the item type; Any where `ProcessQueue()` does not say
else:
    from .._typing import Generic, TypeVar

    _T = TypeVar("_T")

__all__ = ["ProcessQueue"]

# Blocked waits re-check the shared shutdown state this often (seconds); the C core's slice is 20 ms.
_SLICE = 0.02
# How long get_nowait() waits for an item that is counted as queued but not in the pipe yet.
_IN_FLIGHT_GRACE = 0.1

# the shared state: _state[_SHUTDOWN] is _OPEN, _SHUT or _IMMEDIATE; _state[_ITEMS] the queued items
_SHUTDOWN, _ITEMS = 0, 1
_OPEN, _SHUT, _IMMEDIATE = 0, 1, 2

_PRODUCER_SLOTS = 128  # the last entry of _producers says whether IterableQueue endpoints are closed

_PROTOCOL = 5  # as the C core: numpy arrays and other buffers are written in one copy
_loads = ForkingPickler.loads
_TOKEN = None  # what the feeder thread pickles in place of the items (see _start_thread)
# ForkingPickler (multiprocessing's reducers for connections, sockets, ...) costs microseconds per call
# to set up; types that no reducer concerns take pickle.dumps directly
_PLAIN = frozenset({int, float, complex, str, bytes, bytearray, bool, type(None)})


def _serialize(obj, custom=None, dumps=pickle.dumps, forking_dumps=ForkingPickler.dumps):
    cls = type(obj)
    if custom is not None:  # the queue's serializer=: a tag byte keeps bytes and bytearray raw, as the C core
        if cls is bytes or cls is bytearray:
            return (b"b" if cls is bytes else b"a") + obj
        out = custom(obj)
        try:
            return b"c" + memoryview(out).tobytes()
        except TypeError:
            raise TypeError(f"the serializer's dumps() must return a bytes-like object, not {type(out).__name__}") from None
    if cls in _PLAIN or (cls is tuple and all(type(x) in _PLAIN for x in obj)):
        return dumps(obj, _PROTOCOL)
    return forking_dumps(obj, _PROTOCOL)


class ProcessQueue(multiprocessing.queues.JoinableQueue, Generic[_T]):
    """A multiprocessing.JoinableQueue with errors at put(), shutdown(), put_many() and get_many().

    `maxsize` counts items (0 or less: unbounded; put() then never blocks). `capacity` (the C core's
    ring size in bytes, checked and rounded up to a power of two as there) and `named` (the C core's
    named segment) are accepted and have no effect here. `serializer`, a (dumps, loads) pair, replaces
    pickle for the items (exact bytes travel raw, as on the C core).
    `ctx` is the multiprocessing context whose locks and semaphores the queue uses (default: the
    default context, as multiprocessing.Queue). Pass it to child processes as multiprocessing.Queue:
    as an argument of Process (fork, spawn, forkserver) or by inheritance; pickling it at any other
    time raises RuntimeError.
    """

    if TYPE_CHECKING:  # multiprocessing's own state, which its stubs leave out
        _sem: Any
        _cond: Any
        _unfinished_tasks: Any

    def __init__(self, maxsize: int = 0, *, capacity: int | None = None, ctx: BaseContext | None = None,
                 named: bool = False,
                 serializer: tuple[Callable[[Any], bytes], Callable[[bytes], Any]] | None = None) -> None:
        maxsize, capacity, serializer = process_queue_args(maxsize, capacity, ctx, serializer)
        ctx = multiprocessing.get_context() if ctx is None else ctx.get_context()
        super().__init__(maxsize, ctx=ctx)
        self._fastq_maxsize = maxsize
        self._capacity = capacity
        self._named = bool(named)
        self._serializer = serializer
        self._state = ctx.RawArray("q", 2)  # guarded by self._cond (the JoinableQueue's)
        # IterableQueue's producer registry: pids by slot, and whether endpoints are closed
        self._producers = ctx.RawArray("q", _PRODUCER_SLOTS + 1)
        self._fast_poll = None
        self._local()

    def _local(self):
        # this process's own: an item get_many() took but could not decode (the next get raises
        # it), and the items it had taken after that one (the next gets return them first)
        self._failed = None
        self._held = collections.deque()
        self._local_pid = os.getpid()

    # --- multiprocessing plumbing -------------------------------------------------------------

    def __getstate__(self):
        # JoinableQueue's state starts with context.assert_spawning(self): outside process spawning
        # this raises "ProcessQueue objects should only be shared between processes through inheritance"
        return super().__getstate__() + (self._state, self._producers, self._fastq_maxsize,
                                         self._capacity, self._named, self._serializer)

    def __setstate__(self, state):
        super().__setstate__(state[:-6])
        (self._state, self._producers, self._fastq_maxsize, self._capacity, self._named,
         self._serializer) = state[-6:]
        self._fast_poll = None
        self._local()

    @property
    def capacity(self) -> int:
        """The C core's ring size in bytes, as given (rounded up to a power of two); unused here."""
        return self._capacity

    def _decode(self, data):
        if self._serializer is None:
            return _loads(data)
        tag = data[:1]
        if tag == b"b":
            return data[1:]
        if tag == b"a":
            return bytearray(data[1:])
        return self._serializer[1](data[1:])

    def _start_thread(self):
        # The feeder thread pickles each buffer entry and hands the result to self._send_bytes, both
        # captured when it starts. put() has pickled its items already and appends them to a side
        # deque; the buffer gets a token only when it holds none (a pending token will send what
        # is appended before the feeder takes it), and for each token the feeder's send_bytes
        # writes everything the side deque holds, in order. The closure does not reference self,
        # so the queue can still be garbage collected.
        side = self._side = collections.deque()
        popleft, send = side.popleft, self._writer.send_bytes

        def send_pending(_token, popleft=popleft, send=send):
            while True:
                try:
                    data = popleft()
                except IndexError:  # not to the feeder's own `except IndexError`
                    return
                send(data)

        self._send_bytes = send_pending
        super()._start_thread()

    def _poll_fn(self):
        """self._poll (Connection.poll) builds a selector per call; a select.poll object is reused."""
        if _select_poll is None:
            fn = self._poll
        else:
            poller = _select_poll()
            poller.register(self._reader.fileno(), POLLIN)
            ready = poller.poll

            def fn(timeout=0.0, ready=ready):
                return bool(ready(timeout * 1000.0))

        self._fast_poll = fn
        return fn

    def _check_open(self):
        if self._closed:
            raise ValueError(f"Queue {self!r} is closed")

    # --- putting ------------------------------------------------------------------------------

    def _acquire_slot(self, block, deadline):
        """Take one slot of the maxsize semaphore, or raise Full or ShutDown."""
        sem = self._sem
        if sem.acquire(False):
            return
        if not block:
            raise Full
        state = self._state
        while True:
            if state[_SHUTDOWN]:
                raise ShutDown
            wait = _SLICE
            if deadline is not None:
                wait = deadline - monotonic()
                if wait <= 0.0:
                    raise Full
                wait = min(wait, _SLICE)
            if sem.acquire(True, wait):
                return

    def _commit(self, datas):
        """Queue `datas` (pickled items) whose slots are taken; on ShutDown give the slots back."""
        n = len(datas)
        state = self._state
        with self._cond:
            if state[_SHUTDOWN]:
                for _ in range(n):
                    self._sem.release()
                raise ShutDown
            state[_ITEMS] += n
            release = self._unfinished_tasks.release
            for _ in range(n):
                release()
        with self._notempty:
            if self._thread is None:
                self._start_thread()
            self._side.extend(datas)
            if not self._buffer:
                self._buffer.append(_TOKEN)
                self._notempty.notify()

    def put(self, obj: _T, block: bool = True, timeout: float | None = None) -> None:
        """Put `obj` into the queue; the same as multiprocessing.Queue.put, except that `obj` is
        pickled here (an unpicklable item raises here and nothing is queued), a negative timeout
        raises ValueError, and a shut-down queue raises ShutDown."""
        self._check_open()
        _check_timeout(block, timeout)
        if self._state[_SHUTDOWN]:
            raise ShutDown
        data = _serialize(obj, self._dumps())
        self._acquire_slot(block, None if timeout is None or not block else monotonic() + timeout)
        self._commit((data,))

    def put_nowait(self, obj: _T) -> None:
        return self.put(obj, False)

    def _dumps(self):
        return None if self._serializer is None else self._serializer[0]

    def put_many(self, items: Iterable[_T], block: bool = True, timeout: float | None = None) -> None:
        """Put every item of `items`, in order (fastq extra).

        Every item is pickled first: an unpicklable one raises before anything is queued. Blocks as
        put() does while the queue is full; if it times out (or, with block false, finds no room) it
        raises Full after inserting a prefix, with the count in the exception's `inserted`
        attribute. Raises ShutDown (also with `inserted`) if the queue is or gets shut down.
        """
        self._check_open()
        _check_timeout(block, timeout)
        dumps = self._dumps()
        datas = [_serialize(obj, dumps) for obj in items]  # as the C core: pickling errors first
        if self._state[_SHUTDOWN] and datas:  # an empty batch is a no-op, as on every other queue
            raise _with_inserted(ShutDown(), 0)
        deadline = None if timeout is None or not block else monotonic() + timeout
        acquire = self._sem.acquire
        inserted, n = 0, len(datas)
        while inserted < n:
            try:
                self._acquire_slot(block, deadline)
            except (Full, ShutDown) as exc:
                raise _with_inserted(exc, inserted) from None
            k = 1
            while inserted + k < n and acquire(False):
                k += 1
            try:
                self._commit(datas[inserted:inserted + k])
            except ShutDown as exc:
                raise _with_inserted(exc, inserted) from None
            inserted += k

    # --- getting ------------------------------------------------------------------------------

    def _recv(self, wait, max_items=1):
        """Up to `max_items` pickled items from the pipe, waiting at most `wait` seconds (0: do not
        wait) for the first; [] if none came. Raises ShutDown after an immediate shutdown."""
        rlock = self._rlock
        if not (rlock.acquire(True, wait) if wait > 0.0 else rlock.acquire(False)):
            return []
        try:
            poll = self._fast_poll or self._poll_fn()
            if not poll(wait):
                return []
            recv, release = self._recv_bytes, self._sem.release
            got = [recv()]
            release()
            # then what is queued already: in the pipe, or accepted by a put() and still on its way
            # through a feeder thread (the C core's put() writes to the ring itself)
            items = self._state
            while len(got) < max_items and (poll() or (items[_ITEMS] > len(got) and poll(_IN_FLIGHT_GRACE))):
                got.append(recv())
                release()
            # counted under the read lock, so a getter that takes the lock next sees an exact count
            state = self._state
            with self._cond:
                if state[_SHUTDOWN] == _IMMEDIATE:  # shutdown(immediate=True) counted them discarded
                    raise ShutDown
                state[_ITEMS] -= len(got)
            return got
        finally:
            rlock.release()

    def _get(self, block, timeout, max_items):
        self._check_open()
        _check_timeout(block, timeout)
        if (self._failed is not None or self._held) and self._local_pid != os.getpid():
            self._local()  # a fork child: what this process held was its parent's
        if self._failed is not None:
            exc, self._failed = self._failed, None
            raise exc
        if self._held:
            held = self._held
            return [held.popleft() for _ in range(min(max_items, len(held)))]
        state = self._state
        deadline = None if timeout is None or not block else monotonic() + timeout
        grace_end = None
        while True:
            shutdown = state[_SHUTDOWN]
            if shutdown == _IMMEDIATE:
                self._discard()
                raise ShutDown
            if shutdown and state[_ITEMS] <= 0:
                raise ShutDown
            if not block:
                got = self._recv(0.0, max_items)
                if got:
                    return got
                if state[_ITEMS] <= 0:
                    raise Empty
                # queued, but still on its way through some feeder thread
                now = monotonic()
                if grace_end is None:
                    grace_end = now + _IN_FLIGHT_GRACE
                elif now >= grace_end:
                    raise Empty
                got = self._recv(min(_SLICE, grace_end - now), max_items)
                if got:
                    return got
                continue
            wait = _SLICE
            if deadline is not None:
                wait = min(_SLICE, max(deadline - monotonic(), 0.0))
            got = self._recv(wait, max_items)
            if got:
                return got
            if deadline is not None and monotonic() >= deadline:
                # as get_nowait(): an item accepted but still in a feeder thread gets its grace,
                # so get(timeout=0) right after this process's put() finds it, as in queue.Queue
                block = False

    def get(self, block: bool = True, timeout: float | None = None, *, copy: bool = True) -> _T:
        """Remove and return an item; the same as multiprocessing.Queue.get, except that a negative
        timeout raises ValueError and a shut-down queue raises ShutDown (once drained, or at once
        after an immediate shutdown). `copy` is the C core's (its copy=False hands large arrays
        over as read-only views of shared memory); the items here come through a pipe and are
        always the reader's own."""
        return self._decode(self._get(block, timeout, 1)[0])

    def get_nowait(self) -> _T:
        return self.get(False)

    def get_many(self, max_items: SupportsIndex, block: bool = True, timeout: float | None = None) -> list[_T]:
        """Remove and return a list of up to `max_items` items (fastq extra).

        Waits, as get() does, only for the first item; then takes what is already in the pipe. If an
        item after the first cannot be unpickled, the items before it are returned and the next
        get() or get_many() raises its error.
        """
        max_items = _max_items(max_items)
        datas = self._get(block, timeout, max_items)
        out = [self._decode(datas[0])]
        for i in range(1, len(datas)):
            try:
                out.append(self._decode(datas[i]))
            except Exception as exc:
                self._failed = exc
                self._held.extend(datas[i + 1:])
                break
        return out

    def _discard(self):
        """After an immediate shutdown: drop what is in the pipe and in this process's feeder
        buffer (they were counted as discarded and done), giving back their maxsize slots."""
        with self._notempty:
            if self._thread is not None:
                dropped = len(self._side)
                self._side.clear()  # what the feeder took already goes to the pipe (tokens stay: harmless)
                for _ in range(dropped):
                    self._sem.release()
        if self._closed or not self._rlock.acquire(False):
            return
        try:
            poll = self._fast_poll or self._poll_fn()
            while poll():
                self._recv_bytes()
                self._sem.release()
        finally:
            self._rlock.release()

    # --- asyncio (fastq/_aio.py) ------------------------------------------------------------------

    def _async_ready(self, timeout: float) -> bool:
        """For an event loop's waiter thread: wait at most `timeout` seconds until the pipe holds an
        item or the queue is shut down or closed (True), else False. Takes nothing."""
        deadline = monotonic() + timeout
        while True:
            if self._closed or self._state[_SHUTDOWN] or self._held or self._failed is not None:  # type: ignore[attr-defined]
                return True
            left = deadline - monotonic()
            if left <= 0.0:
                return False
            if multiprocessing.connection.wait([self._reader], min(left, _SLICE)):  # type: ignore[attr-defined]
                return True

    def _async_room(self, timeout: float) -> bool:
        """For an event loop's waiter thread: at most `timeout` seconds (and one slice) until the
        queue is not full, looking every millisecond (multiprocessing's semaphore cannot be
        waited on without taking it). Always True: then the coroutine tries again."""
        deadline = monotonic() + min(timeout, _SLICE)
        while self.full() and not self.is_shutdown and monotonic() < deadline:
            time.sleep(0.001)
        return True

    def async_get(self, timeout: float | None = None) -> Coroutine[Any, Any, _T]:
        """Remove and return an item, awaiting one at most `timeout` seconds (fastq extra)."""
        from .. import _aio

        return _aio.get(self, timeout)

    def async_put(self, obj: _T, timeout: float | None = None) -> Coroutine[Any, Any, None]:
        """Put an item, awaiting room at most `timeout` seconds (fastq extra)."""
        from .. import _aio

        return _aio.put(self, obj, timeout)

    def async_get_many(self, max_items: SupportsIndex, timeout: float | None = None) -> Coroutine[Any, Any, list[_T]]:
        """Remove and return up to `max_items` items, awaiting only the first (fastq extra)."""
        from .. import _aio

        return _aio.get_many(self, max_items, timeout)

    def __aiter__(self) -> AsyncIterator[_T]:
        """Items until the queue is shut down and drained (fastq extra)."""
        from .. import _aio

        return _aio.iterate(self)

    # --- sizes ----------------------------------------------------------------------------------

    @property
    def maxsize(self) -> int:
        """The maxsize given at construction (0: unbounded)."""
        return self._fastq_maxsize

    def qsize(self) -> int:
        """The number of items put and not yet got, across processes (approximate while others are
        putting or getting). Works on every platform."""
        return max(self._state[_ITEMS], 0)

    def empty(self) -> bool:
        return self.qsize() == 0

    def full(self) -> bool:
        return 0 < self._fastq_maxsize <= self.qsize()

    # --- joinable and shutdown --------------------------------------------------------------------

    def join(self, timeout: float | None = None) -> bool:  # type: ignore[override]  # (multiprocessing's returns None)
        """Block until every item put has been got and task_done() called for it, or, with a
        `timeout` in seconds, until it expires. Returns True when all tasks are done, False on
        timeout (fastq extra: multiprocessing's join() takes no timeout and returns None)."""
        if timeout is not None and timeout < 0:
            raise ValueError("'timeout' must be a non-negative number")
        deadline = None if timeout is None else monotonic() + timeout
        is_zero = self._unfinished_tasks._semlock._is_zero
        with self._cond:
            while not is_zero():
                if deadline is None:
                    self._cond.wait()
                else:
                    remaining = deadline - monotonic()
                    if remaining <= 0.0:
                        return False
                    self._cond.wait(remaining)
            return True

    def shutdown(self, immediate: bool = False) -> None:
        """Shut the queue down, as Python 3.13's queue.Queue.shutdown, for every process using it.

        put() then raises ShutDown everywhere; get() raises ShutDown once the queue is drained. With
        `immediate`, the queued items are discarded and counted as done (join() returns once the
        items already got are done too) and get() raises ShutDown at once. Blocked putters and
        getters wake within _SLICE seconds.
        """
        state = self._state
        with self._cond:
            if immediate:
                state[_SHUTDOWN] = _IMMEDIATE
                discarded, state[_ITEMS] = state[_ITEMS], 0
                acquire = self._unfinished_tasks.acquire
                for _ in range(max(discarded, 0)):
                    if not acquire(False):
                        break
                self._cond.notify_all()
            elif state[_SHUTDOWN] == _OPEN:
                state[_SHUTDOWN] = _SHUT
        if immediate:
            self._discard()

    @property
    def is_shutdown(self) -> bool:
        """True once shutdown() was called, in any process (as queue.Queue.is_shutdown)."""
        return self._state[_SHUTDOWN] != _OPEN

    # --- producer registration, for IterableQueue (iterable.py) -----------------------------------
    # The same protocol as the C core's participant table: a token is (slot, pid). Here a producer
    # that dies without close() is not noticed (crash tolerance is the C core's promise).

    def _producer_register(self):
        with self._cond:
            slots = self._producers
            for i in range(_PRODUCER_SLOTS):
                if slots[i] == 0:
                    slots[i] = os.getpid()
                    return (i, slots[i])
        raise RuntimeError("too many live producers for one IterableQueue")

    def _producer_adopt(self, token):
        i, pid = token
        if pid == os.getpid():
            return token
        with self._cond:
            if self._producers[i] == pid:
                self._producers[i] = os.getpid()
                return (i, os.getpid())
        return self._producer_register()

    def _producer_unregister(self, token):
        i, pid = token
        with self._cond:
            if self._producers[i] == pid:
                self._producers[i] = 0

    def _producers_alive(self):
        return sum(1 for i in range(_PRODUCER_SLOTS) if self._producers[i])

    def _endpoints_close(self):
        self._producers[_PRODUCER_SLOTS] = 1

    def _endpoints_closed(self):
        return bool(self._producers[_PRODUCER_SLOTS])

    def _drained(self):
        return self.qsize() == 0

    def _flush_backlog(self):
        pass  # items still in the feeder thread are counted in qsize() already
