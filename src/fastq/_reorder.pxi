# ReorderBuffer: ordered delivery of results that arrive out of order (_c/reorder.h).

from libc.stdint cimport uint32_t

cdef extern from "reorder.h":
    ctypedef struct fq_reorder:
        uint32_t mask
        uint32_t next_out
        uint32_t next_id
        Py_ssize_t filled
        PyObject **slots
    int fq_reorder_init(fq_reorder *b, uint32_t window, uint32_t start) except -1
    int fq_reorder_has(const fq_reorder *b, uint32_t i)
    int fq_reorder_put(fq_reorder *b, uint32_t id, object item) except -1
    int fq_reorder_ready(const fq_reorder *b)
    object fq_reorder_take(fq_reorder *b)
    uint32_t fq_reorder_pending(const fq_reorder *b)
    uint32_t fq_reorder_window(const fq_reorder *b)
    void fq_reorder_free(fq_reorder *b)
    void fq_reorder_clear(fq_reorder *b)


@cython.auto_pickle(False)
cdef class ReorderBuffer:
    """A window of `window` slots (a power of two) that turns results arriving in any order back
    into the order of their packet ids.

    reserve() hands out the next id (uint32, wrapping modulo 2**32), blocking while `window` ids
    are reserved and not yet delivered: that is the back-pressure. put(packet_id, item) files a
    result under a reserved id, in O(1). get() returns the items in id order, waiting (with the
    GIL released) for the next one. shutdown() makes reserve() raise ShutDown; get() still
    delivers every reserved id, then raises ShutDown.
    """
    cdef fq_reorder buf
    cdef fq_cond c_ready, c_room
    cdef bint _shutdown
    cdef object _unused  # gives the type GC support; the slots are traversed (see the end)
    cdef object __weakref__

    def __cinit__(self, window, *, start=0):
        cdef long long w = window
        if w < 1 or w > (1 << 31) or (w & (w - 1)):
            raise ValueError(f"window must be a power of two from 1 to 2**31, not {window!r}")
        cdef uint32_t first = start
        fq_cond_init(&self.c_ready)
        fq_cond_init(&self.c_room)
        fq_reorder_init(&self.buf, <uint32_t>w, first)

    def __dealloc__(self):
        fq_reorder_free(&self.buf)
        fq_cond_fini(&self.c_ready)
        fq_cond_fini(&self.c_room)

    @property
    def window(self):
        return fq_reorder_window(&self.buf)

    @property
    def next_id(self):
        """The id reserve() hands out next."""
        return self.buf.next_id

    @property
    def next_out(self):
        """The id whose item get() returns next."""
        return self.buf.next_out

    @property
    def pending(self):
        """Ids reserved and not yet delivered by get()."""
        return fq_reorder_pending(&self.buf)

    @property
    def is_shutdown(self):
        return self._shutdown

    def qsize(self):
        """Items put and not yet delivered (including those waiting behind a gap)."""
        return self.buf.filled

    def reserve(self, block=True, timeout=None):
        """Return the next packet id. Blocks while the window is full of reserved ids (with
        block false, or after `timeout` seconds, raises Full); raises ShutDown after shutdown()."""
        cdef fq_time_t deadline = _deadline(block, timeout)
        cdef uint32_t window = fq_reorder_window(&self.buf)
        while True:
            if self._shutdown:
                fq_cond_signal(&self.c_room)
                raise ShutDown
            if fq_reorder_pending(&self.buf) < window:
                break
            if not block:
                raise Full
            if fq_cond_wait(&self.c_room, deadline) == 0 and fq_reorder_pending(&self.buf) >= window:
                raise Full
        packet_id = self.buf.next_id
        self.buf.next_id += 1
        if fq_reorder_pending(&self.buf) < window:
            fq_cond_signal(&self.c_room)
        return packet_id

    def put(self, uint32_t packet_id, item):
        """File `item` under `packet_id`, which reserve() handed out. A late, unknown or
        duplicate id raises ValueError."""
        fq_reorder_put(&self.buf, packet_id, item)
        if fq_reorder_ready(&self.buf):
            fq_cond_signal(&self.c_ready)

    def get(self, block=True, timeout=None):
        """Remove and return the item of the next id in order, waiting for it if necessary
        (with block false, or after `timeout` seconds, raises Empty). After shutdown(), raises
        ShutDown once every reserved id has been delivered."""
        cdef fq_time_t deadline = _deadline(block, timeout)
        while not fq_reorder_ready(&self.buf):
            if self._shutdown and fq_reorder_pending(&self.buf) == 0:
                fq_cond_signal(&self.c_ready)
                raise ShutDown
            if not block:
                raise Empty
            if fq_cond_wait(&self.c_ready, deadline) == 0 and not fq_reorder_ready(&self.buf):
                raise Empty
        item = fq_reorder_take(&self.buf)
        fq_cond_signal(&self.c_room)
        if fq_reorder_ready(&self.buf) or (self._shutdown and fq_reorder_pending(&self.buf) == 0):
            fq_cond_signal(&self.c_ready)
        return item

    def _async_watch(self, int which, int fd, int delta):
        """Register or unregister an event loop's fd for the "next item ready" signal (fastq/_aio.py)."""
        fq_cond_watch(&self.c_ready, fd, delta)

    def shutdown(self):
        """Refuse further reservations and wake every waiter."""
        self._shutdown = True
        fq_cond_signal(&self.c_room)
        fq_cond_signal(&self.c_ready)

    @classmethod
    def __class_getitem__(cls, item):
        return types.GenericAlias(cls, item)


cdef traverseproc _reorder_traverse_fields = (<PyTypeObject*>ReorderBuffer).tp_traverse

cdef int _reorder_traverse(PyObject *o, visitproc visit, void *arg) noexcept:
    cdef fq_reorder *b = &(<ReorderBuffer>o).buf
    cdef uint32_t i
    cdef int err = _reorder_traverse_fields(o, visit, arg)
    if err or b.slots == NULL:
        return err
    for i in range(b.mask + 1):
        if fq_reorder_has(b, i):
            err = visit(b.slots[i], arg)
            if err:
                return err
    return 0

cdef inquiry _reorder_clear_fields = (<PyTypeObject*>ReorderBuffer).tp_clear

cdef int _reorder_clear(object o) except -1:
    fq_reorder_clear(&(<ReorderBuffer>o).buf)
    return _reorder_clear_fields(o)

(<PyTypeObject*>ReorderBuffer).tp_traverse = <traverseproc>_reorder_traverse
(<PyTypeObject*>ReorderBuffer).tp_clear = <inquiry>_reorder_clear
