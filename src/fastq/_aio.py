"""The asyncio face of fastq's queues: async_get, async_put, async_get_many and `async for`.

A coroutine never blocks its loop. It tries the queue's non-blocking call; when that finds the
queue empty (or full) it waits for a wake from its loop, then tries again. Nothing is taken or
inserted before the last await, so a cancelled call changed nothing: a get either returned its item
or left it queued, a put either inserted or raised.

Wakes: each event loop gets one _Waker, an eventfd (a pipe where there is none) that the loop
watches with add_reader. A queue in this process writes to it on every signal of a condition that
coroutines of the loop wait on (C core: _c/wait.h, without running Python code in put; pure core:
its condition's notify). A ProcessQueue's puts come from other processes, so a loop awaiting one
has one thread per queue (not per call), blocked in the queue's own wait (`_async_ready`, the
futex on the C core), that wakes the loop through call_soon_threadsafe; it lingers a while after
its last waiter so a stream of gets does not start a thread each.

A wake is a hint: the woken coroutine re-tries, and waits again if another consumer was faster. A
woken coroutine that is cancelled before it re-tries passes its wake on, so no item is left behind
while a coroutine still waits for it.
"""
from __future__ import annotations

import asyncio
import os
import sys
import threading
import weakref
from collections import deque
from operator import index
from typing import Any, Callable

from .errors import Empty, EmptyTimeout, Full, FullTimeout, ShutDown

NOT_EMPTY, NOT_FULL = 0, 1
_SLICE = 0.05  # a ProcessQueue waiter thread re-checks that it is still wanted this often (seconds)
_LINGER = 1.0  # and stays this long after its last waiter, for the next one

if sys.version_info >= (3, 11):
    _EmptyTimeout, _FullTimeout = EmptyTimeout, FullTimeout
else:  # asyncio.TimeoutError is its own class before 3.11: these are both

    class _EmptyTimeout(EmptyTimeout, asyncio.TimeoutError):
        __doc__ = EmptyTimeout.__doc__

    class _FullTimeout(FullTimeout, asyncio.TimeoutError):
        __doc__ = FullTimeout.__doc__

    _EmptyTimeout.__name__ = _EmptyTimeout.__qualname__ = "EmptyTimeout"
    _FullTimeout.__name__ = _FullTimeout.__qualname__ = "FullTimeout"


# ---- the coroutines behind the queues' methods ----

def _deadline(timeout: float | None) -> float:
    """The running loop's time at which `timeout` ends (inf: never)."""
    if timeout is None:
        return _FOREVER
    if timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")
    if not timeout < 1e9:  # NaN too: no limit, as the blocking calls
        return _FOREVER
    return asyncio.get_running_loop().time() + timeout


_FOREVER = float("inf")


async def get(q: Any, timeout: float | None = None) -> Any:
    return await take(q.get, q, timeout)


async def get_many(q: Any, max_items: Any, timeout: float | None = None) -> list[Any]:
    if index(max_items) < 1:
        raise ValueError("'max_items' must be at least 1")
    return await take(lambda block: q.get_many(max_items, block), q, timeout)  # type: ignore[no-any-return]


async def take(fetch: Callable[[bool], Any], q: Any, timeout: float | None, recheck: float = _FOREVER) -> Any:
    """fetch(False) until it returns, awaiting wakes from `q` in between, at most `timeout`
    seconds, and at least every `recheck` seconds (IterableQueue: producers that died; with q
    None, only that)."""
    deadline = None
    while True:
        try:
            return fetch(False)
        except Empty:
            pass
        now = asyncio.get_running_loop().time()
        if deadline is None:
            deadline = _deadline(timeout)
        elif now >= deadline:
            raise _EmptyTimeout from None
        if q is None:
            await asyncio.sleep(min(deadline, now + recheck) - now)
        else:
            await _wait(q, NOT_EMPTY, min(deadline, now + recheck))


async def put(q: Any, item: Any, timeout: float | None = None) -> None:
    deadline = None
    while True:
        try:
            return q.put(item, False)  # type: ignore[no-any-return]
        except Full:
            pass
        if deadline is None:
            deadline = _deadline(timeout)
        if not await _wait(q, NOT_FULL, deadline):
            try:
                return q.put(item, False)  # type: ignore[no-any-return]
            except Full:
                raise _FullTimeout from None


async def iterate(q: Any) -> Any:
    while True:
        try:
            item = await q.async_get()
        except ShutDown:  # Closed included
            return
        yield item


async def _wait(q: Any, which: int, deadline: float) -> bool:
    """Wait until `q` may have an item (NOT_EMPTY) or room (NOT_FULL), or is shut down: True; or
    until the loop's clock passes `deadline`: False."""
    loop = asyncio.get_running_loop()
    waker = _waker(loop)
    if waker.rfd < 0 and not hasattr(q, "_async_ready"):
        # a loop that cannot watch an fd (Windows): look again every millisecond
        await asyncio.sleep(max(0.0, min(deadline - loop.time(), 0.001)))
        return loop.time() < deadline
    fut = loop.create_future()
    slot = waker.add(q, which, fut)
    if not slot.threaded and slot.ready() > 0:
        # another thread got in between the caller's try and the registration (the GIL switches
        # between bytecodes): its signal found no fd to write to
        waker.discard(q, which, fut)
        return True
    timer = None if deadline == _FOREVER else loop.call_at(deadline, _expire, fut)
    try:
        return await fut  # type: ignore[no-any-return]
    except BaseException:
        if fut.done() and not fut.cancelled() and fut.result():
            waker.recheck(q, which)  # woken, then cancelled: the wake goes to the next waiter
        raise
    finally:
        if timer is not None:
            timer.cancel()
        waker.discard(q, which, fut)


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> bool:
    """loop.call_soon_threadsafe, False when the loop is closed."""
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:
        return False
    return True


def _expire(fut: asyncio.Future[bool]) -> None:
    if not fut.done():
        fut.set_result(False)


# ---- one waker per event loop ----

class _Slot:
    """The coroutines of one loop waiting on one condition of one queue, in arrival order."""

    def __init__(self, waker: _Waker, q: Any, which: int) -> None:
        self.waker, self.q, self.which = waker, q, which
        self.futures: deque[asyncio.Future[bool]] = deque()

    def ready(self) -> int:
        """How many waiters a wake should release: one per item (free slot), all after a shutdown."""
        q = self.q
        try:
            if getattr(q, "is_shutdown", False):
                return len(self.futures)
            if self.which == NOT_EMPTY:
                n = q.qsize()
            else:
                maxsize = q.maxsize
                n = len(self.futures) if maxsize <= 0 else maxsize - q.qsize()
            # a ProcessQueue's counts are approximate (and its ring may be full by bytes, not
            # count): its waiter thread rang for a reason, so at least one waiter tries again
            return max(1, n) if self.threaded else n  # type: ignore[no-any-return]
        except Exception:  # a closed queue: every waiter's own call will say so
            return len(self.futures)

    def wake(self) -> None:
        n = self.ready()
        futures = self.futures
        while n > 0 and futures:
            fut = futures.popleft()
            if not fut.done():
                fut.set_result(True)
                n -= 1
        if not futures:
            self.idle()

    threaded = False

    def start(self) -> None:
        self.q._async_watch(self.which, self.waker.wfd, 1)

    def idle(self) -> None:
        self.waker.slots.pop((id(self.q), self.which), None)
        self.q._async_watch(self.which, self.waker.wfd, -1)
        if self.waker.loop_ref() is None:  # the last waiter of a loop gone: its fds go now
            self.waker.release()

    def added(self) -> None:
        pass


class _ThreadSlot(_Slot):
    """A ProcessQueue's waiters in one loop, and the thread that waits for the queue on their
    behalf: q._async_ready(timeout) blocks (GIL released) until a get may succeed or the queue is
    shut down. After each wake the thread waits for the loop to have run it (`rung`), so an item
    that nobody has taken yet does not make it spin."""

    threaded = True

    def __init__(self, waker: _Waker, q: Any, which: int) -> None:
        super().__init__(waker, q, which)
        self.lock = threading.Lock()
        self.wanted = threading.Event()
        self.rung = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        pass

    def added(self) -> None:
        with self.lock:
            self.wanted.set()
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name=f"fastq-aio-waiter-{id(self.q):x}", daemon=True)
                self.thread.start()

    def idle(self) -> None:
        pass  # the thread stays a while for the next waiter, then drops the slot

    def _ready(self, timeout: float) -> bool:
        q = self.q
        return q._async_ready(timeout) if self.which == NOT_EMPTY else q._async_room(timeout)  # type: ignore[no-any-return]

    def _run(self) -> None:
        loop = self.waker.loop_ref()
        while loop is not None and not loop.is_closed():
            self.wanted.clear()
            if not self.futures:
                if not self.wanted.wait(_LINGER):
                    with self.lock:
                        if not self.futures:
                            self.thread = None
                            _call_soon(loop, self.waker.drop, self)
                            return
                continue
            try:
                ready = self._ready(_SLICE)
            except Exception:  # the queue is closed or broken: the waiters' own calls say so
                with self.lock:
                    self.thread = None
                _call_soon(loop, self._ring)
                return
            if ready and self.futures:
                self.rung.clear()
                if not _call_soon(loop, self._ring):
                    return
                while not self.rung.wait(_SLICE):
                    if loop.is_closed():
                        return

    def _ring(self) -> None:
        self.rung.set()
        self.wake()


class _Waker:
    """One event loop's wakes: the fd its in-process queues write to, and its waiting coroutines."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop_ref = weakref.ref(loop)  # (the loop holds the waker through add_reader, not back)
        self.slots: dict[tuple[int, int], _Slot] = {}
        self.fds_closed = False
        self.rfd = self.wfd = -1  # none: the loop cannot watch one (Windows' loops), _wait polls
        if sys.platform == "win32":
            return
        if hasattr(os, "eventfd"):
            rfd = wfd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        else:
            rfd, wfd = os.pipe()
            os.set_blocking(rfd, False)
            os.set_blocking(wfd, False)
        try:
            loop.add_reader(rfd, self._readable)
        except NotImplementedError:
            for fd in {rfd, wfd}:
                os.close(fd)
            return
        self.rfd, self.wfd = rfd, wfd

    def _readable(self) -> None:
        try:
            os.read(self.rfd, 4096)
        except OSError:
            pass
        for slot in list(self.slots.values()):
            if not slot.threaded:
                slot.wake()

    def add(self, q: Any, which: int, fut: asyncio.Future[bool]) -> _Slot:
        key = (id(q), which)
        slot = self.slots.get(key)
        if slot is None:
            slot = (_ThreadSlot if hasattr(q, "_async_ready") else _Slot)(self, q, which)
            slot.start()
            self.slots[key] = slot
        slot.futures.append(fut)
        slot.added()
        return slot

    def discard(self, q: Any, which: int, fut: asyncio.Future[bool]) -> None:
        slot = self.slots.get((id(q), which))
        if slot is None:
            return
        try:
            slot.futures.remove(fut)
        except ValueError:
            return
        if not slot.futures:
            slot.idle()

    def recheck(self, q: Any, which: int) -> None:
        slot = self.slots.get((id(q), which))
        if slot is not None:
            slot.wake()

    def drop(self, slot: _Slot) -> None:
        if self.slots.get((id(slot.q), slot.which)) is slot and not slot.futures and \
                getattr(slot, "thread", None) is None:
            del self.slots[(id(slot.q), slot.which)]

    def close(self) -> None:
        """Forget every registration (a fork child: the queues' fds and threads were the parent's)."""
        for slot in list(self.slots.values()):
            if not slot.threaded:
                slot.q._async_watch(slot.which, self.wfd, -1)
        self.slots.clear()
        self.release()

    def release(self) -> None:
        """Close the fds, once the loop is gone and no queue holds them. A queue still holding
        wfd would write into whatever file reuses the number: until then they stay open."""
        if self.fds_closed or self.rfd < 0 or any(not slot.threaded for slot in self.slots.values()):
            return
        self.fds_closed = True
        for fd in {self.rfd, self.wfd}:
            try:
                os.close(fd)
            except OSError:
                pass


_wakers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Waker] = weakref.WeakKeyDictionary()
_wakers_lock = threading.Lock()


def _waker(loop: asyncio.AbstractEventLoop) -> _Waker:
    waker = _wakers.get(loop)
    if waker is None:
        with _wakers_lock:
            waker = _wakers[loop] = _Waker(loop)
            weakref.finalize(loop, waker.release)
    return waker


def _after_fork() -> None:
    for waker in list(_wakers.values()):
        try:
            waker.close()
        except Exception:
            pass
    _wakers.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
