"""Pure-Python twin of the C ReorderBuffer: same ids (uint32, serial-number order), same errors."""
from __future__ import annotations

import threading
from time import monotonic

from ..errors import Empty, Full, ShutDown
from ._queue import _check_timeout, _watch

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs `import fastq` as much again: fastq/_typing.py
    from typing import Any, Generic, SupportsIndex

    import typing_extensions

    _T = typing_extensions.TypeVar("_T", default=Any)  # the item type; Any where `ReorderBuffer(n)` does not say
else:
    from .._typing import Generic, TypeVar

    _T = TypeVar("_T")

_MASK32 = 0xFFFFFFFF


class ReorderBuffer(Generic[_T]):
    """A window of `window` slots (a power of two) that turns results arriving in any order back
    into the order of their packet ids.

    reserve() hands out the next id (uint32, wrapping modulo 2**32), blocking while `window` ids
    are reserved and not yet delivered: that is the back-pressure. put(packet_id, item) files a
    result under a reserved id, in O(1). get() returns the items in id order, waiting for the
    next one. shutdown() makes reserve() raise ShutDown; get() still delivers every reserved id,
    then raises ShutDown.
    """

    _EMPTY = object()

    def __init__(self, window: SupportsIndex, *, start: SupportsIndex = 0) -> None:
        w = window.__index__()
        if w < 1 or w > 1 << 31 or w & (w - 1):
            raise ValueError(f"window must be a power of two from 1 to 2**31, not {window!r}")
        first = start.__index__()
        if not 0 <= first <= _MASK32:
            raise OverflowError("start must be a uint32")
        self._slots: list[Any] = [self._EMPTY] * w  # an item, or _EMPTY
        self._mask = w - 1
        self._next_out = self._next_id = first
        self._filled = 0
        self._shutdown = False
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._room = threading.Condition(self._lock)

    @property
    def window(self) -> int:
        return self._mask + 1

    @property
    def next_id(self) -> int:
        """The id reserve() hands out next."""
        return self._next_id

    @property
    def next_out(self) -> int:
        """The id whose item get() returns next."""
        return self._next_out

    @property
    def pending(self) -> int:
        """Ids reserved and not yet delivered by get()."""
        return (self._next_id - self._next_out) & _MASK32

    @property
    def is_shutdown(self) -> bool:
        return self._shutdown

    def qsize(self) -> int:
        """Items put and not yet delivered (including those waiting behind a gap)."""
        return self._filled

    def _is_ready(self) -> bool:
        return self._slots[self._next_out & self._mask] is not self._EMPTY

    def reserve(self, block: bool = True, timeout: float | None = None) -> int:
        """Return the next packet id. Blocks while the window is full of reserved ids (with
        block false, or after `timeout` seconds, raises Full); raises ShutDown after shutdown()."""
        _check_timeout(block, timeout)
        endtime = None if timeout is None else monotonic() + timeout
        with self._room:
            while True:
                if self._shutdown:
                    raise ShutDown
                if self.pending <= self._mask:
                    break
                if not block:
                    raise Full
                remaining = None if endtime is None else endtime - monotonic()
                if remaining is not None and remaining <= 0:
                    raise Full
                self._room.wait(remaining)
            packet_id = self._next_id
            self._next_id = (packet_id + 1) & _MASK32
            return packet_id

    def put(self, packet_id: SupportsIndex, item: _T) -> None:
        """File `item` under `packet_id`, which reserve() handed out. A late, unknown or
        duplicate id raises ValueError."""
        pid = packet_id.__index__()
        if not 0 <= pid <= _MASK32:
            raise OverflowError("packet id must be a uint32")
        with self._lock:
            if (pid - self._next_out) & _MASK32 >= self.pending:
                prefix = f"packet id {pid} was not handed out by reserve(), or was delivered already; "
                if not self.pending:
                    raise ValueError(prefix + "no id is reserved now")
                raise ValueError(prefix + f"the reserved, undelivered ids are {self._next_out} to "
                                 f"{(self._next_id - 1) & _MASK32} (modulo 2**32)")
            i = pid & self._mask
            if self._slots[i] is not self._EMPTY:
                raise ValueError(f"packet id {pid} was already put")
            self._slots[i] = item
            self._filled += 1
            if i == self._next_out & self._mask:
                self._ready.notify()

    def get(self, block: bool = True, timeout: float | None = None) -> _T:
        """Remove and return the item of the next id in order, waiting for it if necessary
        (with block false, or after `timeout` seconds, raises Empty). After shutdown(), raises
        ShutDown once every reserved id has been delivered."""
        _check_timeout(block, timeout)
        endtime = None if timeout is None else monotonic() + timeout
        with self._ready:
            while not self._is_ready():
                if self._shutdown and not self.pending:
                    raise ShutDown
                if not block:
                    raise Empty
                remaining = None if endtime is None else endtime - monotonic()
                if remaining is not None and remaining <= 0:
                    raise Empty
                self._ready.wait(remaining)
            i = self._next_out & self._mask
            item, self._slots[i] = self._slots[i], self._EMPTY
            self._filled -= 1
            self._next_out = (self._next_out + 1) & _MASK32
            self._room.notify()
            if self._is_ready():
                self._ready.notify()
            return item  # type: ignore[no-any-return]

    def _async_watch(self, which: int, fd: int, delta: int) -> None:
        """Register or unregister an event loop's fd for the "next item ready" signal (fastq/_aio.py)."""
        _watch(self._ready, "notify", fd, delta)

    def shutdown(self) -> None:
        """Refuse further reservations and wake every waiter."""
        with self._lock:
            self._shutdown = True
            self._room.notify_all()
            self._ready.notify_all()
