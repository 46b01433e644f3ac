"""Pure-Python twin of the C ReorderBuffer: same ids (uint32, serial-number order), same errors."""
import threading
from time import monotonic

from ..errors import Empty, Full, ShutDown
from ._queue import _check_timeout

_MASK32 = 0xFFFFFFFF


class ReorderBuffer:
    """A window of `window` slots (a power of two) that turns results arriving in any order back
    into the order of their packet ids.

    reserve() hands out the next id (uint32, wrapping modulo 2**32), blocking while `window` ids
    are reserved and not yet delivered: that is the back-pressure. put(packet_id, item) files a
    result under a reserved id, in O(1). get() returns the items in id order, waiting for the
    next one. shutdown() makes reserve() raise ShutDown; get() still delivers every reserved id,
    then raises ShutDown.
    """

    _EMPTY = object()

    def __init__(self, window, *, start=0):
        w = window.__index__()
        if w < 1 or w > 1 << 31 or w & (w - 1):
            raise ValueError(f"window must be a power of two from 1 to 2**31, not {window!r}")
        start = start.__index__()
        if not 0 <= start <= _MASK32:
            raise OverflowError("start must be a uint32")
        self._slots = [self._EMPTY] * w
        self._mask = w - 1
        self._next_out = self._next_id = start
        self._filled = 0
        self._shutdown = False
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._room = threading.Condition(self._lock)

    window = property(lambda self: self._mask + 1)
    next_id = property(lambda self: self._next_id, doc="The id reserve() hands out next.")
    next_out = property(lambda self: self._next_out, doc="The id whose item get() returns next.")
    pending = property(lambda self: (self._next_id - self._next_out) & _MASK32,
                       doc="Ids reserved and not yet delivered by get().")
    is_shutdown = property(lambda self: self._shutdown)

    def qsize(self):
        """Items put and not yet delivered (including those waiting behind a gap)."""
        return self._filled

    def _is_ready(self):
        return self._slots[self._next_out & self._mask] is not self._EMPTY

    def reserve(self, block=True, timeout=None):
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

    def put(self, packet_id, item):
        """File `item` under `packet_id`, which reserve() handed out. A late, unknown or
        duplicate id raises ValueError."""
        packet_id = packet_id.__index__()
        if not 0 <= packet_id <= _MASK32:
            raise OverflowError("packet id must be a uint32")
        with self._lock:
            if (packet_id - self._next_out) & _MASK32 >= self.pending:
                raise ValueError(
                    f"packet id {packet_id} is not a reserved, undelivered id "
                    f"(those are {self._next_out} up to {self._next_id}, mod 2**32)")
            i = packet_id & self._mask
            if self._slots[i] is not self._EMPTY:
                raise ValueError(f"packet id {packet_id} was already put")
            self._slots[i] = item
            self._filled += 1
            if i == self._next_out & self._mask:
                self._ready.notify()

    def get(self, block=True, timeout=None):
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
            return item

    def shutdown(self):
        """Refuse further reservations and wake every waiter."""
        with self._lock:
            self._shutdown = True
            self._room.notify_all()
            self._ready.notify_all()
