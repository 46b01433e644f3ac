# cython: language_level=3, boundscheck=False, wraparound=False
"""ProcessQueue's Python face over the shared-memory ring (_c/shmq.h). Linux only: setup.py
builds this module there, and fastq falls back to the pure ProcessQueue elsewhere.

Put: pickle (protocol 5, out-of-band buffers) outside everything, reserve a record (the only
lock), copy once into the ring with the GIL released for large copies, publish. Get: find the
READY record at head, allocate the output objects, claim, copy once out, release, unpickle.
Blocking calls wait in slices (FQ_SLICE_NS) without the GIL, and between slices take the GIL
back to run signal handlers (Ctrl-C) and check the deadline.
"""
cimport cython
from libc.stdint cimport uint32_t, uint64_t, int64_t, INT64_MAX
from libc.string cimport memcpy
from libc.stdlib cimport malloc, free
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from cpython.bytearray cimport PyByteArray_FromStringAndSize, PyByteArray_AS_STRING
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.exc cimport PyErr_CheckSignals, PyErr_SetFromErrno

import collections
import os
import pickle
import threading

from fastq.errors import Empty, Full, QueueCorrupted, ShutDown

cdef extern from "sys/mman.h" nogil:
    int munmap(void *addr, size_t length)

cdef extern from "shmq.h" nogil:
    enum:
        FQ_OK, FQ_AGAIN, FQ_SHUT, FQ_CORRUPT, FQ_LOCKED, FQ_TOOBIG
        FQ_KIND_PICKLE, FQ_KIND_BYTES, FQ_KIND_BYTEARRAY, FQ_KIND_SPILL
        FQ_SHM_HEADER, FQ_REC_HDR, FQ_SPILL_NAME_LEN
    int64_t FQ_SLICE_NS
    uint64_t FQ_SHM_MAGIC
    ctypedef struct fq_shm_header:
        uint64_t magic
        uint64_t cap
        uint64_t maxsize
        uint32_t shutdown
        uint32_t endpoints_closed
        uint64_t head
        uint64_t tail
    ctypedef struct fq_shmq:
        char *base
        size_t map_size
        fq_shm_header *hdr
        uint64_t cap
    ctypedef struct fq_wslot:
        char *payload
    ctypedef struct fq_rslot:
        const char *payload
        uint64_t state
        uint32_t len
    ctypedef struct fq_payload:
        uint32_t nbufs
        uint32_t kind
        uint64_t main_len
        const char *main
    uint64_t FQ_ROLE_PRODUCER
    int fq_slot_claim(fq_shmq *q, uint64_t role, uint64_t ident)
    int fq_slot_swap(fq_shmq *q, int i, uint64_t old, uint64_t new)
    int fq_slot_count_live(fq_shmq *q, uint64_t role)
    uint64_t fq_st(uint64_t kind, uint64_t v)
    int fq_ident_setup()
    uint64_t fq_self_ident()
    int64_t fq_now_ns()
    uint64_t fq_payload_len(uint32_t nbufs, uint64_t main_len, const uint64_t *buf_lens)
    char *fq_payload_write_header(char *payload, uint32_t nbufs, uint32_t kind, uint64_t main_len,
                                  const uint64_t *buf_lens)
    int fq_payload_parse(const char *payload, uint64_t len, fq_payload *p)
    int fq_read_payload(const fq_rslot *s, fq_payload *p)
    uint64_t fq_buf_len(const fq_payload *p, uint32_t i)
    uint64_t fq_buf_start(uint64_t o)
    int fq_reserve(fq_shmq *q, uint64_t me, uint64_t len, fq_wslot *w, int patient)
    int fq_publish(fq_shmq *q, const fq_wslot *w, uint64_t me)
    void fq_abandon(fq_shmq *q, const fq_wslot *w, uint64_t me)
    int fq_peek(fq_shmq *q, fq_rslot *s)
    int fq_claim(fq_shmq *q, const fq_rslot *s, uint64_t me)
    void fq_release(fq_shmq *q, const fq_rslot *s, uint64_t me)
    int fq_discard_all(fq_shmq *q, uint64_t me)
    void fq_wait_not_empty(fq_shmq *q, int64_t timeout_ns)
    void fq_wait_not_full(fq_shmq *q, int64_t timeout_ns)
    void fq_wait_joined(fq_shmq *q, int64_t timeout_ns)
    int fq_items(fq_shmq *q, uint64_t *items)
    uint64_t fq_unfinished(fq_shmq *q)
    int fq_task_done(fq_shmq *q)
    int fq_shutdown(fq_shmq *q, uint64_t me)
    void fq_wake_everyone(fq_shmq *q)
    int fq_shmq_create(fq_shmq *q, uint64_t cap, uint64_t maxsize)
    int fq_shmq_attach(fq_shmq *q, int fd)
    int fq_shmq_create_named(fq_shmq *q, const char *name, uint64_t cap, uint64_t maxsize)
    int fq_shm_open_existing(const char *name)
    void fq_shmq_detach(fq_shmq *q, int fd, int discard, uint64_t me)
    int fq_spill_create(const char *name, uint64_t size, char **out)
    int fq_spill_open(const char *name, uint64_t name_len, char **out, uint64_t *size)
    void fq_spill_unlink(const char *name, uint64_t len)
    int fq_spill_unlink_any "shm_unlink"(const char *name)

if fq_ident_setup() != 0:
    raise ImportError("fastq: process identities do not fit (pid_max above 2**22)")

DEF COPY_WITHOUT_GIL = 65536    # copies larger than this release the GIL
DEF INBAND_BELOW = 4096         # smaller out-of-band buffers are pickled in-band instead
DEF DEFAULT_CAPACITY = 1 << 20
DEF MIN_CAPACITY = 1 << 12
DEF FRAMING_SLACK = 4096        # an item of capacity/4 bytes plus its pickle framing stays in the ring

cdef object _NOT_YET = object()


cdef class _Serialized:
    """An item as it goes into the ring: a kind, the main bytes, out-of-band buffers."""
    cdef uint32_t kind
    cdef object main
    cdef list bufs   # contiguous memoryviews, or None


cdef object _inband_or_keep(list keep):
    def callback(pickle_buffer):
        view = pickle_buffer.raw()
        if view.nbytes < INBAND_BELOW:
            return True
        keep.append(view)
        return False
    return callback


cdef _Serialized _serialize(obj):
    cdef _Serialized s = _Serialized.__new__(_Serialized)
    t = type(obj)
    if t is bytes:  # exactly these types take the raw path and come back as the same type
        s.kind, s.main, s.bufs = FQ_KIND_BYTES, obj, None
    elif t is bytearray:
        s.kind, s.main, s.bufs = FQ_KIND_BYTEARRAY, obj, None
    elif t is int or t is str or t is float or obj is None or t is bool:  # no buffers inside
        s.kind, s.main, s.bufs = FQ_KIND_PICKLE, pickle.dumps(obj, protocol=5), None
    else:
        s.kind, s.bufs = FQ_KIND_PICKLE, []
        try:
            s.main = pickle.dumps(obj, protocol=5, buffer_callback=_inband_or_keep(s.bufs))
        except BufferError:  # a non-contiguous buffer: pickle it in-band
            s.bufs = []
            s.main = pickle.dumps(obj, protocol=5)
    return s


cdef inline int64_t _remaining(int64_t deadline) noexcept nogil:
    return INT64_MAX if deadline < 0 else deadline - fq_now_ns()


cdef int64_t _deadline_ns(block, timeout) except? -2:
    if timeout is None or not block:
        return -1
    cdef double t = timeout
    if t < 0:
        raise ValueError("'timeout' must be a non-negative number")
    if t > 1e9:
        return -1
    return fq_now_ns() + <int64_t>(t * 1e9)


cdef _raise_for(int rc):
    if rc == FQ_SHUT:
        raise ShutDown
    if rc == FQ_CORRUPT:
        raise QueueCorrupted("the shared-memory segment is inconsistent")
    if rc < 0:
        raise OSError(-rc, os.strerror(-rc))
    raise AssertionError(f"unexpected ring status {rc}")


def _attach(dup_fd):
    """Unpickle a ProcessQueue sent to a spawned child: map the segment behind the fd."""
    cdef ProcessQueue q = ProcessQueue.__new__(ProcessQueue)
    q._attach(dup_fd.detach())
    return q


def _attach_named(name):
    """Unpickle a named ProcessQueue: open the segment by its name."""
    cdef ProcessQueue q = ProcessQueue.__new__(ProcessQueue)
    fd = fq_shm_open_existing(name.encode())
    if fd < 0:
        raise OSError(-fd, os.strerror(-fd), name)
    q._attach(fd)
    q._name = name
    return q


@cython.auto_pickle(False)
cdef class ProcessQueue:
    """A multi-producer, multi-consumer queue between processes, over one shared-memory segment.

    Drop-in for multiprocessing.Queue and multiprocessing.JoinableQueue: put/get with block and
    timeout, put_nowait/get_nowait, qsize/empty/full, close/join_thread/cancel_join_thread,
    task_done/join; plus shutdown(immediate=False), put_many and get_many. `maxsize` counts
    items (0: unbounded, put never blocks); `capacity` sets the ring's bytes; `ctx` is accepted
    for compatibility. A process killed at any moment never hangs the others: at most the
    message it was writing or reading is lost.
    """
    cdef fq_shmq q
    cdef int fd
    cdef bint _closed
    cdef uint64_t _ident            # the process this handle's local state belongs to
    cdef object _backlog            # serialized items waiting for room (maxsize=0 only)
    cdef object _backlog_lock
    cdef object _feeder
    cdef bint _cancel_flush
    cdef object _name                # named mode: the segment's name
    cdef bint _owns_name             # the creator unlinks it
    cdef object __weakref__

    def __cinit__(self):
        self.fd = -1

    def __init__(self, maxsize=0, *, capacity=None, ctx=None, named=False):
        cdef Py_ssize_t m = maxsize
        cdef uint64_t cap = DEFAULT_CAPACITY if capacity is None else capacity
        if cap < MIN_CAPACITY:
            raise ValueError(f"capacity must be at least {MIN_CAPACITY} bytes")
        while cap & (cap - 1):
            cap += cap & -cap  # round up to a power of two
        if self.q.base != NULL:
            raise RuntimeError("ProcessQueue.__init__ called twice")
        if named:  # 96 random bits: unguessable
            self._name = "/fastq-q-" + os.urandom(12).hex()
            rc = fq_shmq_create_named(&self.q, self._name.encode(), cap, m if m > 0 else 0)
            self._owns_name = rc >= 0
        else:
            rc = fq_shmq_create(&self.q, cap, m if m > 0 else 0)
        if rc < 0:
            raise OSError(-rc, os.strerror(-rc))
        self.fd = rc
        self._local_reset()

    cdef _attach(self, int fd):
        rc = fq_shmq_attach(&self.q, fd)
        if rc != 0:
            os.close(fd)
            _raise_for(rc)
        self.fd = fd
        self._local_reset()

    cdef _local_reset(self):
        self._ident = fq_self_ident()
        self._backlog = collections.deque()
        self._backlog_lock = threading.Lock()
        self._feeder = None
        self._closed = False

    def __dealloc__(self):
        # A named segment can still be attached by name unless its creator is the one letting go.
        owner = self._owns_name and self._ident == fq_self_ident()
        if owner:
            fq_spill_unlink_any(self._name.encode())
        fq_shmq_detach(&self.q, self.fd, self._name is None or owner, fq_self_ident())

    def __reduce__(self):
        from multiprocessing import context, reduction
        if self._name is not None:  # named mode: picklable anywhere while the creator lives
            return _attach_named, (self._name,)
        if context.get_spawning_popen() is None:
            raise RuntimeError("ProcessQueue objects should only be shared between processes through inheritance")
        return _attach, (reduction.DupFd(self.fd),)

    cdef inline int _check(self) except -1:
        if self.q.base == NULL:
            raise ValueError("ProcessQueue is not initialized")
        if self.q.hdr.magic != FQ_SHM_MAGIC:
            raise QueueCorrupted("the shared-memory segment's header is overwritten")
        if self._ident != fq_self_ident():  # a fork child: the backlog was the parent's
            self._local_reset()
        return 0

    @property
    def maxsize(self):
        return self.q.hdr.maxsize

    @property
    def capacity(self):
        return self.q.cap

    def _segment_view(self):
        """A writable memoryview of the whole segment (header first), for corruption tests."""
        self._check()
        cdef char[::1] view = <char[:self.q.map_size]>self.q.base
        return memoryview(view).cast("B")

    # ---- put ----

    cdef int _write(self, fq_wslot *w, _Serialized s, uint64_t *lens, uint32_t nbufs, uint64_t total) except -1:
        """Copy a serialized item into a reserved record (or, for a SPILL, its name)."""
        cdef Py_buffer view
        cdef char *dst = fq_payload_write_header(w.payload, nbufs, s.kind, lens[0], lens + 1)
        cdef const char *src
        cdef uint64_t o
        cdef uint32_t i
        src = <const char*>(PyByteArray_AS_STRING(s.main) if s.kind == FQ_KIND_BYTEARRAY else PyBytes_AS_STRING(s.main))
        if total > COPY_WITHOUT_GIL:
            with nogil:
                memcpy(dst, src, lens[0])
        else:
            memcpy(dst, src, lens[0])
        o = 16 + 8 * <uint64_t>nbufs + lens[0]
        for i in range(nbufs):
            o = fq_buf_start(o)
            PyObject_GetBuffer(s.bufs[i], &view, PyBUF_SIMPLE)
            try:
                if lens[i + 1] > COPY_WITHOUT_GIL:
                    with nogil:
                        memcpy(w.payload + o, view.buf, lens[i + 1])
                else:
                    memcpy(w.payload + o, view.buf, lens[i + 1])
            finally:
                PyBuffer_Release(&view)
            o += lens[i + 1]
        return 0

    cdef int _put_serialized(self, _Serialized s, object block, int64_t deadline) except -1:
        """Reserve, copy, publish. Raises Full (no room in time), ShutDown, QueueCorrupted."""
        cdef uint32_t nbufs = 0 if s.bufs is None else len(s.bufs)
        cdef uint64_t small_lens[9]
        cdef uint64_t *lens = &small_lens[0]
        cdef uint64_t name_len = FQ_SPILL_NAME_LEN
        cdef fq_wslot w, sw
        cdef uint64_t total, spill_total = 0
        cdef uint64_t me = fq_self_ident()
        cdef int rc
        cdef char *spill = NULL
        cdef bytes spill_name = None
        cdef _Serialized ring_item = None
        cdef bint written = False
        if nbufs >= 9:
            lens = <uint64_t*>malloc(8 * (nbufs + 1))
            if lens == NULL:
                raise MemoryError
        try:
            lens[0] = len(s.main)
            for i in range(nbufs):
                lens[i + 1] = memoryview(s.bufs[i]).nbytes
            total = fq_payload_len(nbufs, lens[0], lens + 1)
            if total == <uint64_t>-1 or total > self.q.cap // 4 + FRAMING_SLACK:
                # Too large for the ring: the payload goes to a one-off segment, the ring
                # record carries its name. The name is in the reserved record before the
                # segment exists, so whoever abandons the record of a producer killed on the
                # way (fq_peek) unlinks the segment: a SIGKILL leaks no /dev/shm entry.
                spill_total = total if total != <uint64_t>-1 else 0
                if spill_total == 0 or spill_total > (<uint64_t>1 << 40):
                    raise ValueError("item too large for a ProcessQueue")
                spill_name = b"/fastq-" + os.urandom(12).hex().encode()
                ring_item = _Serialized.__new__(_Serialized)
                ring_item.kind, ring_item.main, ring_item.bufs = FQ_KIND_SPILL, spill_name, None
                total = fq_payload_len(0, name_len, NULL)
            rc = fq_reserve(&self.q, me, total, &w, 0)  # uncontended: no GIL round trip
            while True:
                if rc == FQ_LOCKED:
                    with nogil:
                        rc = fq_reserve(&self.q, me, total, &w, 1)
                if rc == FQ_OK:
                    break
                if rc == FQ_AGAIN:
                    if not block:
                        raise Full
                    if _remaining(deadline) <= 0:
                        raise Full
                    with nogil:
                        fq_wait_not_full(&self.q, min(FQ_SLICE_NS, _remaining(deadline)))
                elif rc != FQ_LOCKED:
                    _raise_for(rc)
                if PyErr_CheckSignals() < 0:
                    raise KeyboardInterrupt  # unreachable: the handler's exception propagates
                rc = FQ_LOCKED
            try:
                if ring_item is None:
                    self._write(&w, s, lens, nbufs, total)
                else:
                    self._write(&w, ring_item, &name_len, 0, total)  # the name first
                    rc = fq_spill_create(spill_name, spill_total, &spill)
                    if rc < 0:
                        spill_name = None  # nothing of ours to unlink
                        raise OSError(-rc, os.strerror(-rc))
                    try:
                        sw.payload = spill
                        self._write(&sw, s, lens, nbufs, spill_total)
                    finally:
                        munmap(spill, spill_total)
                written = True
            finally:  # the record never stays WRITING, and a torn one is never published
                if written:
                    fq_publish(&self.q, &w, me)
                    spill_name = None  # delivered: the consumer unlinks it
                else:
                    fq_abandon(&self.q, &w, me)
            return 0
        finally:
            if lens != &small_lens[0]:
                free(lens)
            if spill_name is not None:
                fq_spill_unlink(spill_name, FQ_SPILL_NAME_LEN)

    cdef _enqueue(self, _Serialized s, block, timeout):
        cdef int64_t deadline = _deadline_ns(block, timeout)
        if self.q.hdr.maxsize:
            self._put_serialized(s, block, deadline)
            return
        # Unbounded, like multiprocessing.Queue: put never blocks. Items that find the ring full
        # wait, in order, in this process's backlog for a feeder thread.
        if not self._backlog:  # per-thread order holds: a thread's earlier item is in the ring
            try:
                self._put_serialized(s, False, -1)
                return
            except Full:
                pass
        with self._backlog_lock:
            if self.q.hdr.shutdown:
                raise ShutDown
            self._backlog.append(s)
            if self._feeder is None:
                self._feeder = threading.Thread(target=self._feed, name="fastq-feeder", daemon=True)
                self._feeder.start()
                _register_flush(self)

    def _feed(self):
        cdef _Serialized s
        while True:
            with self._backlog_lock:
                if not self._backlog:
                    self._feeder = None
                    return
                s = self._backlog[0]
            try:
                self._put_serialized(s, True, -1)
            except ShutDown:
                with self._backlog_lock:
                    self._backlog.clear()
                    self._feeder = None
                return
            with self._backlog_lock:
                self._backlog.popleft()

    def put(self, obj, block=True, timeout=None):
        """Put obj into the queue. With maxsize > 0, block (at most `timeout` seconds) while
        the queue is full, then raise Full; with block false raise Full at once. An unpicklable
        item raises here and leaves the queue as it was. Raises ShutDown after shutdown()."""
        self._check()
        if self._closed:
            raise ValueError(f"Queue {self!r} is closed")
        if self.q.hdr.shutdown:
            raise ShutDown
        self._enqueue(_serialize(obj), block, timeout)

    def put_nowait(self, obj):
        return self.put(obj, False)

    def put_many(self, items, block=True, timeout=None):
        """Put every item in order (fastq extra). On a timeout (or with block false and no
        room) raise Full after inserting a prefix; its `inserted` attribute says how many."""
        self._check()
        if self._closed:
            raise ValueError(f"Queue {self!r} is closed")
        batch = [_serialize(obj) for obj in items]  # every error before anything is queued
        cdef int64_t deadline = _deadline_ns(block, timeout)
        cdef Py_ssize_t done = 0
        try:
            for s in batch:
                if self.q.hdr.maxsize:
                    self._put_serialized(s, block, deadline)
                else:
                    self._enqueue(s, block, None)
                done += 1
        except (Full, ShutDown) as exc:
            exc.inserted = done
            raise

    # ---- get ----

    cdef object _take(self, fq_rslot *r):
        """Claim and copy out the record peek found; _NOT_YET if another consumer took it."""
        cdef fq_payload p
        cdef uint64_t me = fq_self_ident(), spill_size = 0, o
        cdef char *spill = NULL
        cdef uint32_t i
        cdef int rc
        rc = fq_read_payload(r, &p)
        if rc == FQ_CORRUPT:
            _raise_for(rc)  # still READY at head: retrying would spin forever
        if rc != FQ_OK:
            return _NOT_YET  # reused under us: peek again
        # Allocate before claiming: a MemoryError must not strand a claimed record.
        if p.kind == FQ_KIND_BYTEARRAY:
            main = PyByteArray_FromStringAndSize(NULL, p.main_len)
        elif p.kind == FQ_KIND_SPILL:
            main = None
        else:
            main = PyBytes_FromStringAndSize(NULL, p.main_len)
        bufs = [PyByteArray_FromStringAndSize(NULL, fq_buf_len(&p, i)) for i in range(p.nbufs)]
        if fq_claim(&self.q, r, me) != FQ_OK:
            return _NOT_YET
        try:
            if p.kind == FQ_KIND_SPILL:
                rc = fq_spill_open(p.main, p.main_len, &spill, &spill_size)
                if rc != 0:
                    _raise_for(rc)
                try:
                    if fq_payload_parse(spill, spill_size, &p) != FQ_OK or p.kind == FQ_KIND_SPILL:
                        raise QueueCorrupted("a spill segment is inconsistent")
                    return self._copy_out(&p)
                finally:
                    munmap(spill, spill_size)
            self._fill(&p, main, bufs)
        finally:
            fq_release(&self.q, r, me)
        return _decode(p.kind, main, bufs)

    cdef object _copy_out(self, fq_payload *p):
        cdef uint32_t i
        if p.kind == FQ_KIND_BYTEARRAY:
            main = PyByteArray_FromStringAndSize(NULL, p.main_len)
        else:
            main = PyBytes_FromStringAndSize(NULL, p.main_len)
        bufs = [PyByteArray_FromStringAndSize(NULL, fq_buf_len(p, i)) for i in range(p.nbufs)]
        self._fill(p, main, bufs)
        return _decode(p.kind, main, bufs)

    cdef int _fill(self, fq_payload *p, object main, list bufs) except -1:
        cdef char *dst = PyByteArray_AS_STRING(main) if p.kind == FQ_KIND_BYTEARRAY else PyBytes_AS_STRING(main)
        cdef uint64_t o = 16 + 8 * <uint64_t>p.nbufs + p.main_len, n
        cdef const char *base = p.main - (16 + 8 * <uint64_t>p.nbufs)
        cdef uint32_t i
        if p.main_len > COPY_WITHOUT_GIL:
            with nogil:
                memcpy(dst, p.main, p.main_len)
        else:
            memcpy(dst, p.main, p.main_len)
        for i in range(p.nbufs):
            n = fq_buf_len(p, i)
            o = fq_buf_start(o)
            dst = PyByteArray_AS_STRING(bufs[i])
            if n > COPY_WITHOUT_GIL:
                with nogil:
                    memcpy(dst, base + o, n)
            else:
                memcpy(dst, base + o, n)
            o += n
        return 0

    cdef object _get_one(self, block, int64_t deadline):
        cdef fq_rslot r
        cdef int rc
        while True:
            rc = fq_peek(&self.q, &r)  # never blocks
            if rc == FQ_OK:
                item = self._take(&r)
                if item is not _NOT_YET:
                    return item
                continue
            if rc != FQ_AGAIN:
                _raise_for(rc)
            if self.q.hdr.shutdown and self.q.hdr.head == self.q.hdr.tail:
                raise ShutDown
            if not block or _remaining(deadline) <= 0:
                raise Empty
            with nogil:
                fq_wait_not_empty(&self.q, min(FQ_SLICE_NS, _remaining(deadline)))
            if PyErr_CheckSignals() < 0:
                raise KeyboardInterrupt

    def get(self, block=True, timeout=None):
        """Remove and return an item. Block (at most `timeout` seconds) until one is there,
        then raise Empty; with block false raise Empty at once. Raises ShutDown once the queue
        is shut down and empty."""
        self._check()
        if self._closed:
            raise ValueError(f"Queue {self!r} is closed")
        return self._get_one(block, _deadline_ns(block, timeout))

    def get_nowait(self):
        return self.get(False)

    def get_many(self, max_items, block=True, timeout=None):
        """Remove and return a list of up to `max_items` items, waiting only for the first
        (fastq extra)."""
        self._check()
        if self._closed:
            raise ValueError(f"Queue {self!r} is closed")
        cdef Py_ssize_t n = max_items
        if n < 1:
            raise ValueError("'max_items' must be at least 1")
        out = [self._get_one(block, _deadline_ns(block, timeout))]
        cdef fq_rslot r
        cdef int rc
        while len(out) < n:  # then take what is there, without waiting or raising
            rc = fq_peek(&self.q, &r)
            if rc == FQ_CORRUPT:
                _raise_for(rc)
            if rc != FQ_OK:
                break
            item = self._take(&r)
            if item is not _NOT_YET:
                out.append(item)
        return out

    # ---- sizes ----

    def qsize(self):
        """Return the approximate number of items (not reliable!)."""
        self._check()
        cdef uint64_t items = 0
        fq_items(&self.q, &items)
        return items + len(self._backlog)

    def empty(self):
        return self.qsize() == 0

    def full(self):
        return 0 < self.q.hdr.maxsize <= self.qsize()

    # ---- joinable ----

    def task_done(self):
        """Indicate that an item taken with get() is processed (JoinableQueue)."""
        self._check()
        if fq_task_done(&self.q) != FQ_OK:
            raise ValueError("task_done() called too many times")

    def join(self, timeout=None):
        """Block until every item ever put has been taken and task_done() called for it. With
        a timeout (fastq extra), return False if that did not happen in time, else True."""
        self._check()
        cdef int64_t deadline = _deadline_ns(True, timeout)
        while fq_unfinished(&self.q):
            if _remaining(deadline) <= 0:
                return False
            with nogil:
                fq_wait_joined(&self.q, min(FQ_SLICE_NS, _remaining(deadline)))
            if PyErr_CheckSignals() < 0:
                raise KeyboardInterrupt
        return True

    # ---- shutdown and close ----

    def shutdown(self, immediate=False):
        """Shut the queue down in every process: put raises ShutDown; get raises it once the
        queue is empty (at once with immediate, which discards queued items, counting them
        done). Every blocked caller wakes up."""
        self._check()
        cdef uint64_t me = fq_self_ident()
        cdef int rc = FQ_LOCKED
        while rc == FQ_LOCKED:
            with nogil:
                rc = fq_shutdown(&self.q, me)
            if PyErr_CheckSignals() < 0:
                raise KeyboardInterrupt
        if rc != FQ_OK:
            _raise_for(rc)
        if immediate:
            with nogil:
                rc = fq_discard_all(&self.q, me)
            if rc != FQ_OK:
                _raise_for(rc)

    @property
    def is_shutdown(self):
        return bool(self.q.hdr.shutdown)

    # ---- producer registration, for IterableQueue (iterable.py) ----
    # A token names a slot of the segment's participant table and its owner: (index, value).

    def _producer_register(self):
        """Register this process as a producer; returns a token."""
        self._check()
        cdef uint64_t value = fq_st(FQ_ROLE_PRODUCER, fq_self_ident())
        i = fq_slot_claim(&self.q, FQ_ROLE_PRODUCER, fq_self_ident())
        if i < 0:
            raise RuntimeError("too many live producers for one IterableQueue")
        return (i, value)

    def _producer_adopt(self, token):
        """Move a producer registration to this process (after fork or unpickling); returns
        the new token. A token whose slot was taken over meanwhile registers anew."""
        self._check()
        cdef uint64_t value = fq_st(FQ_ROLE_PRODUCER, fq_self_ident())
        if token[1] == value:
            return token
        if fq_slot_swap(&self.q, token[0], token[1], value):
            return (token[0], value)
        return self._producer_register()

    def _producer_unregister(self, token):
        self._check()
        fq_slot_swap(&self.q, token[0], token[1], 0)

    def _producers_alive(self):
        """Registered producers whose processes live (dead ones are dropped)."""
        self._check()
        return fq_slot_count_live(&self.q, FQ_ROLE_PRODUCER)

    def _endpoints_close(self):
        self._check()
        self.q.hdr.endpoints_closed = 1
        with nogil:
            fq_wake_everyone(&self.q)

    def _endpoints_closed(self):
        self._check()
        return bool(self.q.hdr.endpoints_closed)

    def _flush_backlog(self):
        self.join_thread()

    def _drained(self):
        """Nothing queued and nothing being written: true emptiness, for IterableQueue."""
        self._check()
        return self.q.hdr.head == self.q.hdr.tail and not self._backlog

    def close(self):
        """This process will put no more items (as in multiprocessing). Items still in the
        backlog are flushed by the feeder thread."""
        self._closed = True

    def join_thread(self):
        """Wait until this process's backlog is in the ring (multiprocessing: the feeder thread)."""
        feeder = self._feeder
        if feeder is not None:
            feeder.join()

    def cancel_join_thread(self):
        """Do not wait for the backlog at exit (as in multiprocessing)."""
        self._cancel_flush = True


def _flush_at_exit(ref):
    q = ref()
    if q is not None and not (<ProcessQueue>q)._cancel_flush:
        q.join_thread()


cdef _register_flush(ProcessQueue q):
    # At exit (in children too), wait for the backlog, as multiprocessing joins its feeder.
    import weakref
    from multiprocessing import util
    util.Finalize(q, _flush_at_exit, args=(weakref.ref(q),), exitpriority=-5)


cdef object _decode(uint32_t kind, object main, list bufs):
    if kind == FQ_KIND_PICKLE:
        return pickle.loads(main, buffers=bufs) if bufs else pickle.loads(main)
    return main
