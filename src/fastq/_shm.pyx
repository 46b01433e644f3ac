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
from cpython.bytearray cimport PyByteArray_FromStringAndSize, PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBuffer_FillInfo, PyBUF_SIMPLE
from cpython.exc cimport PyErr_CheckSignals, PyErr_SetFromErrno

import collections
import errno
import os
import pickle
import signal
import threading
import types
import weakref

from fastq._args import process_queue_args
from fastq.errors import Empty, Full, QueueCorrupted, ShutDown

cdef extern from "sys/mman.h" nogil:
    int munmap(void *addr, size_t length)

cdef extern from "mem.h" nogil:
    size_t fq_mem_round(size_t n)
    char *fq_mem_map(size_t length)

cdef extern from "shmq.h" nogil:
    enum:
        FQ_OK, FQ_AGAIN, FQ_SHUT, FQ_CORRUPT, FQ_LOCKED, FQ_TOOBIG
        FQ_KIND_PICKLE, FQ_KIND_BYTES, FQ_KIND_BYTEARRAY, FQ_KIND_SPILL
        FQ_SHM_HEADER, FQ_REC_HDR, FQ_SPILL_NAME_LEN, FQ_MAX_PRODUCERS, FQ_MAX_NBUFS
        FQ_SHUT_GRACEFUL, FQ_SHUT_IMMEDIATE
    int64_t FQ_SLICE_NS
    uint64_t FQ_SHM_MAGIC
    ctypedef struct fq_shm_header:
        uint64_t magic
        uint64_t cap
        uint64_t maxsize
        uint64_t pidns
        uint32_t shutdown
        uint32_t endpoints_closed
        uint64_t head
        uint64_t tail
        uint64_t pool_key
    ctypedef struct fq_shmq:
        char *base
        size_t map_size
        fq_shm_header *hdr
        uint64_t cap
        int member
    ctypedef struct fq_wslot:
        char *payload
        uint64_t pos
    ctypedef struct fq_rslot:
        const char *payload
        uint64_t pos
        uint64_t state
        uint32_t len
    ctypedef struct fq_payload:
        uint32_t nbufs
        uint32_t kind
        uint64_t main_len
        const char *main
    uint64_t FQ_ROLE_PRODUCER, FQ_ROLE_MEMBER
    long fq_cp_arm(long n, int sig, long *waits)
    uint64_t fq_pidns()
    void fq_pending_add(fq_shmq *q, int64_t delta)
    uint64_t fq_pending(fq_shmq *q, int check_dead)
    void fq_sweep_sleepers(fq_shmq *q)
    void fq_advance_free(fq_shmq *q, int check_dead)
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
    int fq_still_ready(const fq_rslot *s)
    uint64_t fq_buf_len(const fq_payload *p, uint32_t i)
    uint64_t fq_buf_start(uint64_t o)
    int fq_reserve(fq_shmq *q, uint64_t me, uint64_t len, fq_wslot *w, int64_t patience_ns, int accepted)
    int fq_publish(fq_shmq *q, const fq_wslot *w, uint64_t me)
    void fq_abandon(fq_shmq *q, const fq_wslot *w, uint64_t me)
    int fq_peek(fq_shmq *q, fq_rslot *s)
    int fq_claim(fq_shmq *q, const fq_rslot *s, uint64_t me)
    int fq_release(fq_shmq *q, const fq_rslot *s, uint64_t me)
    int fq_discard_all(fq_shmq *q, uint64_t me)
    void fq_wait_not_empty(fq_shmq *q, int64_t timeout_ns)
    void fq_wait_not_full(fq_shmq *q, int64_t timeout_ns)
    void fq_wait_joined(fq_shmq *q, int64_t timeout_ns)
    int fq_items(fq_shmq *q, uint64_t *items)
    uint64_t fq_unfinished(fq_shmq *q)
    int fq_task_done(fq_shmq *q)
    void fq_shutdown(fq_shmq *q, uint32_t how)
    void fq_wake_everyone(fq_shmq *q)
    int fq_shmq_create(fq_shmq *q, uint64_t cap, uint64_t maxsize)
    int fq_shmq_attach(fq_shmq *q, int fd)
    int fq_shmq_create_named(fq_shmq *q, const char *name, uint64_t cap, uint64_t maxsize)
    int fq_shm_open_existing(const char *name)
    void fq_shmq_detach(fq_shmq *q, int fd, const char *name)
    int fq_shmq_release_files(fq_shmq *q, int fd, const char *name)
    int fq_spill_create(const char *name, uint64_t size, char **out)
    int fq_spill_open(const char *name, uint64_t name_len, int writable, char **out, uint64_t *size)
    void fq_spill_unlink(const char *name, uint64_t len)
    int fq_spill_pooled(const char *name)
    void fq_pool_name(const fq_shmq *q, int i, uint64_t gen, char *name)
    int fq_pool_parse(const fq_shmq *q, const char *name, uint64_t len, uint64_t *gen)
    int fq_pool_take(fq_shmq *q, uint64_t me, uint64_t len, uint64_t *gen, int *make, int *queued)
    int fq_pool_make(fq_shmq *q, int i, uint64_t len, uint64_t *gen, char **out, uint64_t *size)
    void fq_pool_put_back(fq_shmq *q, int i, uint64_t me)
    int fq_pool_fill(fq_shmq *q, int i, uint64_t me, uint64_t pos)
    void fq_pool_hand_back(fq_shmq *q, int i, uint64_t pos)
    int fq_pool_trim(fq_shmq *q, uint64_t me, int force)
    int fq_pool_hold(fq_shmq *q, int i, uint64_t pos, uint64_t me)
    void fq_pool_let_go(fq_shmq *q, int i, uint64_t me, int retire)
    uint64_t fq_pool_gen(const fq_shmq *q, int i)
    size_t fq_pool_layout(size_t *trim_at, size_t *entry_size)
    enum:
        FQ_POOL

if fq_ident_setup() != 0:
    raise ImportError("fastq: process identities do not fit (pid_max above 2**22)")

DEF COPY_WITHOUT_GIL = 65536    # copies larger than this release the GIL
DEF INBAND_BELOW = 4096         # smaller out-of-band buffers are pickled in-band instead
DEF REGION_FROM = 262144        # out-of-band buffers this large are read into a _Region (mem.h)
DEF CACHE_ENTRIES = 16          # freed regions kept mapped for the next items: at most this many,
DEF CACHE_BYTES = 256 << 20     # this many bytes in all,
DEF CACHE_IDLE_NS = 1000000000  # for at most this long
DEF FRAMING_SLACK = 4096        # an item of capacity/4 bytes plus its pickle framing stays in the ring
DEF MAX_RING_PAYLOAD = 1 << 30  # a record's size is a u32

cdef object _NOT_YET = object()


cdef uint64_t _spill_above(uint64_t cap):
    """Payloads larger than this go to a spill segment: a quarter of the ring plus pickle framing
    (an item of capacity/4 bytes stays in the ring), but at most half the ring, so that the record
    always fits (in a 4 KiB ring the framing slack alone would pass its size)."""
    return min(cap // 4 + FRAMING_SLACK, cap // 2, MAX_RING_PAYLOAD)


cdef class _Serialized:
    """An item as it goes into the ring: a kind, the main bytes, out-of-band buffers."""
    cdef uint32_t kind
    cdef object main
    cdef list bufs   # contiguous memoryviews, or None


@cython.final
cdef class _SegMap:
    """This process's mapping of a pooled spill segment (shmq.h, "the spill pool"), shared by the
    calls that use it: a copy without the GIL holds a reference, so the mapping goes only when the
    handle's cache has dropped it and the last copy is over."""
    cdef char *base
    cdef uint64_t size
    cdef uint64_t gen   # as the segment's name carries it (24 bits)
    cdef bytes name

    def __dealloc__(self):
        if self.base != NULL:
            munmap(self.base, self.size)


cdef class ProcessQueue


@cython.final
@cython.no_gc_clear  # __dealloc__ needs seg and queue: the cyclic collector must not clear them first
cdef class _Held:
    """The memory of a large item received without a copy (get(copy=False)), exported read-only:
    a one-off spill segment's mapping (ours alone: its name is gone once we claimed it), or a
    pooled segment the queue lends us (HELD) until the last view dies. If this process forks
    while they live, the child maps the segment too: the pool then removes it instead of reusing
    it (fq_pool_let_go's retire)."""
    cdef char *base
    cdef uint64_t size
    cdef _SegMap seg            # pooled: the handle's mapping, kept alive with the views
    cdef ProcessQueue queue     # pooled: whose entry to give back
    cdef int pool_i
    cdef uint64_t ident
    cdef bint forked
    cdef object __weakref__

    def __cinit__(self):
        self.pool_i = -1

    def __getbuffer__(self, Py_buffer *view, int flags):
        PyBuffer_FillInfo(view, self, self.base, self.size, 1, flags)

    def __releasebuffer__(self, Py_buffer *view):
        pass

    def __dealloc__(self):
        if self.seg is None:
            if self.base != NULL:
                munmap(self.base, self.size)
        elif self.pool_i >= 0 and self.queue.q.base != NULL and self.ident == fq_self_ident():
            fq_pool_let_go(&self.queue.q, self.pool_i, self.ident, self.forked)


_live_held = weakref.WeakSet()  # pooled _Held objects, for the fork hook


def _held_before_fork():
    for held in list(_live_held):
        (<_Held>held).forked = True


os.register_at_fork(before=_held_before_fork)


@cython.final
cdef class _Failed:
    """An item taken out of the queue that does not decode: get() raises its error."""
    cdef object exc


cdef object _inband_or_keep(list keep):
    def callback(pickle_buffer):
        view = pickle_buffer.raw()
        if view.nbytes < INBAND_BELOW:
            return True
        keep.append(view)
        return False
    return callback


cdef _Serialized _serialize(obj, object dumps):
    cdef _Serialized s = _Serialized.__new__(_Serialized)
    t = type(obj)
    if t is bytes:  # exactly these types take the raw path and come back as the same type
        s.kind, s.main, s.bufs = FQ_KIND_BYTES, obj, None
    elif t is bytearray:
        s.kind, s.main, s.bufs = FQ_KIND_BYTEARRAY, obj, None
    elif dumps is not None:  # the queue's own serializer: one bytes-like object, nothing out of band
        main = dumps(obj)
        s.kind, s.main, s.bufs = FQ_KIND_PICKLE, main if type(main) is bytes else _bytes_like(main), None
    elif t is int or t is str or t is float or obj is None or t is bool:  # no buffers inside
        s.kind, s.main, s.bufs = FQ_KIND_PICKLE, pickle.dumps(obj, protocol=5), None
    else:
        s.kind, s.bufs = FQ_KIND_PICKLE, []
        try:
            s.main = pickle.dumps(obj, protocol=5, buffer_callback=_inband_or_keep(s.bufs))
        except BufferError:  # a non-contiguous buffer: pickle it in-band
            s.bufs = []
            s.main = pickle.dumps(obj, protocol=5)
        if len(s.bufs) > FQ_MAX_NBUFS:  # more than a record may carry (readers refuse them): in band
            s.bufs = []
            s.main = pickle.dumps(obj, protocol=5)
    return s


cdef bytes _bytes_like(obj):
    try:
        return bytes(memoryview(obj))
    except TypeError:
        raise TypeError(f"the serializer's dumps() must return a bytes-like object, not {type(obj).__name__}") from None


cdef inline int64_t _remaining(int64_t deadline) noexcept nogil:
    return INT64_MAX if deadline < 0 else deadline - fq_now_ns()


cdef inline int64_t _pool_patience(block, int64_t deadline):
    """How long a blocking put waits for a pooled segment (a slice at most, within its timeout)."""
    return max(0, min(FQ_SLICE_NS, _remaining(deadline))) if block else 0


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


def _no_room_for_spill(uint64_t size, int err=errno.ENOSPC):
    return OSError(err, f"{os.strerror(err)}: /dev/shm has no room for a {size}-byte item's segment "
                   "(a Docker container's /dev/shm is 64 MiB unless `docker run --shm-size` raises it)")


def _attach(dup_fd, serializer):
    """Unpickle a ProcessQueue sent to a spawned child: map the segment behind the fd."""
    cdef ProcessQueue q = ProcessQueue.__new__(ProcessQueue)
    q._set_serializer(serializer)
    q._attach(dup_fd.detach())
    return q


def _attach_named(name, serializer=None):
    """Unpickle a named ProcessQueue: open the segment by its name."""
    cdef ProcessQueue q = ProcessQueue.__new__(ProcessQueue)
    fd = fq_shm_open_existing(name.encode())
    if fd < 0:
        raise OSError(-fd, os.strerror(-fd), name)
    q._set_serializer(serializer)
    q._attach(fd)
    q._name = name
    if os.fstat(fd).st_nlink == 0:  # its last holder let go between our open and our lock
        raise FileNotFoundError(errno.ENOENT, "the named ProcessQueue is gone (its last holder let go)", name)
    return q


def _crashpoints(long n=0, int sig=signal.SIGKILL):
    """Tests only (a FASTQ_CRASHPOINTS build: tools/sanitize): stop this process dead with `sig` at
    its nth store or CAS to a segment from now (0: disarm). Returns (points, waits) passed since the
    previous call, or None in a build without crash points."""
    cdef long waits = 0
    cdef long passed = fq_cp_arm(n, sig, &waits)
    return None if passed < 0 else (passed, waits)


def _pool_layout():
    """Tests only: (offset of the pool entries in the header, entries, bytes per entry, offset of
    pool_trim_at): see the spill pool in shmq.h."""
    cdef size_t trim_at = 0, entry_size = 0
    cdef size_t at = fq_pool_layout(&trim_at, &entry_size)
    return at, FQ_POOL, entry_size, trim_at


@cython.auto_pickle(False)
@cython.no_gc_clear  # __dealloc__ (_let_go) needs _name: a named queue freed in a cycle removes it
cdef class ProcessQueue:
    """A multi-producer, multi-consumer queue between processes, over one shared-memory segment.

    Drop-in for multiprocessing.Queue and multiprocessing.JoinableQueue: put/get with block and
    timeout, put_nowait/get_nowait, qsize/empty/full, close/join_thread/cancel_join_thread,
    task_done/join; plus shutdown(immediate=False), put_many and get_many. `maxsize` counts
    items (0: unbounded, put never blocks); `capacity` sets the ring's bytes (a power of two, at
    least 4096; items over about a quarter of it travel in a segment of their own); `ctx` is
    accepted for compatibility; `named` puts the segment in /dev/shm under a random name (picklable
    anywhere while a holder lives); `serializer`, a (dumps, loads) pair, replaces pickle (items are
    unpickled by readers, so a queue shared with less-trusted processes should carry a safe
    format). A process killed at any moment never hangs the others: at most the message it was
    writing or reading is lost.
    """
    cdef fq_shmq q
    cdef int fd
    cdef bint _closed
    cdef bint _released              # let go at exit while threads lived: the mapping is anonymous
    cdef uint64_t _ident            # the process this handle's local state belongs to
    cdef object _backlog            # serialized items waiting for room (maxsize=0 only)
    cdef object _backlog_lock
    cdef object _feeder
    cdef object _feed_error          # what made the feeder drop an item, for the next put()
    cdef object _failed              # an item get_many() took but could not decode: the next get raises it
    cdef bint _cancel_flush
    cdef bint _draining              # join_thread() waits: the feeder stops waiting for pooled segments
    cdef int64_t _member_retry        # no slot was free: when to try again
    cdef int64_t _last_sweep          # when this handle last swept dead sleepers' marks
    cdef uint64_t _member_value
    cdef object _name                # named mode: the segment's name
    cdef object _dumps, _loads       # serializer=, or None for pickle
    cdef list _pool_maps             # this process's _SegMap of each pool entry, or None
    cdef int64_t _pool_tidy_at       # when this handle last dropped stale ones
    cdef object __weakref__

    def __cinit__(self):
        self.fd = -1
        self.q.member = -1

    def __init__(self, maxsize=0, *, capacity=None, ctx=None, named=False, serializer=None):
        if self.q.base != NULL:
            raise RuntimeError("ProcessQueue.__init__ called twice")
        m, cap, serializer = process_queue_args(maxsize, capacity, ctx, serializer)
        self._set_serializer(serializer)
        if named:  # 96 random bits: unguessable
            self._name = "/fastq-q-" + os.urandom(12).hex()
            rc = fq_shmq_create_named(&self.q, self._name.encode(), cap, m)
        else:
            rc = fq_shmq_create(&self.q, cap, m)
        if rc < 0:
            raise OSError(-rc, os.strerror(-rc))
        self.fd = rc
        self.q.hdr.pool_key = int.from_bytes(os.urandom(8), "little")  # before anyone else sees it
        self._local_reset()
        _let_go_at_exit(self)

    cdef _set_serializer(self, serializer):
        self._dumps, self._loads = (None, None) if serializer is None else serializer

    cdef _attach(self, int fd):
        rc = fq_shmq_attach(&self.q, fd)
        if rc != 0:
            os.close(fd)
            _raise_for(rc)
        self.fd = fd
        self._local_reset()
        _let_go_at_exit(self)

    cdef _local_reset(self):
        ns = fq_pidns()
        if self.q.hdr.pidns and ns and self.q.hdr.pidns != ns:
            # its identity would name a pid the others cannot see: they would stall on it or rob it
            raise RuntimeError("this process is in another pid namespace than the ProcessQueue's creator")
        self._ident = fq_self_ident()
        self._backlog = collections.deque()
        self._backlog_lock = threading.Lock()
        self._feeder = None
        self._feed_error = None
        self._failed = None
        self._closed = False
        self._member_retry = 0
        self._pool_maps = [None] * FQ_POOL
        self.q.member = -1  # a fork child's slot is its own, claimed when first needed

    def __dealloc__(self):
        self._let_go()

    cdef _let_go(self):
        """Unmap and close; the last holder also removes the name and what is still queued
        (fq_shmq_detach). At garbage collection, and at exit (a process's last handles, a fork
        child's too: multiprocessing ends its children with os._exit, after their finalizers)."""
        if self.q.base != NULL and self.q.member >= 0 and self._ident == fq_self_ident():
            fq_slot_swap(&self.q, self.q.member, self._member_value, 0)
        self._pool_maps = None
        name = None if self._name is None else self._name.encode()
        fq_shmq_detach(&self.q, self.fd, NULL if name is None else <const char*>name)
        self.fd = -1

    cdef _release_files(self):
        """At exit while other threads live: the mapping turns anonymous and the fd closes; the
        last holder's files go (fq_shmq_release_files)."""
        name = None if self._name is None else self._name.encode()
        # the GIL is held throughout: a thread that takes it afterwards sees _released
        if fq_shmq_release_files(&self.q, self.fd, NULL if name is None else <const char*>name) == 0:
            self._released = True
            self.fd = -1

    def __reduce__(self):
        from multiprocessing import context, reduction
        serializer = None if self._dumps is None else (self._dumps, self._loads)
        if self._name is not None:  # named mode: picklable anywhere while a holder lives
            return _attach_named, (self._name, serializer)
        if context.get_spawning_popen() is None:
            raise RuntimeError("ProcessQueue objects should only be shared between processes through inheritance")
        return _attach, (reduction.DupFd(self.fd), serializer)

    @classmethod
    def __class_getitem__(cls, item):
        return types.GenericAlias(cls, item)

    cdef inline int _check(self) except -1:
        if self.q.base == NULL:
            raise ValueError("ProcessQueue is not initialized")
        if self._released:
            _raise_released()
        if self.q.hdr.magic != FQ_SHM_MAGIC:
            raise QueueCorrupted("the shared-memory segment's header is overwritten")
        if self._ident != fq_self_ident():  # a fork child: the backlog was the parent's
            self._local_reset()
        return 0

    cdef int _member(self) except -2:
        """This handle's MEMBER slot (its sleepers and backlog are counted there, so that a kill
        is repaired), claimed on first need; -1 if the participant table is full. Called before
        each wait, so it also sweeps, once a second, the marks that killed sleepers left."""
        cdef int64_t now = fq_now_ns()
        if now - self._last_sweep > 1000000000:
            self._last_sweep = now
            with nogil:
                fq_sweep_sleepers(&self.q)
        if self.q.member < 0 and now >= self._member_retry:
            i = fq_slot_claim(&self.q, FQ_ROLE_MEMBER, fq_self_ident())
            if i >= 0:
                self._member_value = fq_st(FQ_ROLE_MEMBER, fq_self_ident())
                self.q.member = i
            else:
                self._member_retry = now + 1000000000  # the table is full: look again in a second
        return self.q.member

    @property
    def maxsize(self):
        self._check()
        return self.q.hdr.maxsize

    @property
    def capacity(self):
        self._check()
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

    cdef int _put_serialized(self, _Serialized s, object block, int64_t deadline, int accepted=0,
                             int64_t pool_patience=0) except -1:
        """Reserve, copy, publish. Raises Full (no room in time), ShutDown, QueueCorrupted, OSError.
        `accepted`: a backlog's item, accepted before any graceful shutdown. `pool_patience`: how
        long a large item waits for a pooled segment before it takes a one-off one (ns; -1: raise
        Full at once, and the unbounded put's backlog takes the item)."""
        cdef uint32_t nbufs = 0 if s.bufs is None else len(s.bufs)
        cdef uint64_t small_lens[9]
        cdef uint64_t *lens = &small_lens[0]
        cdef uint64_t name_len = FQ_SPILL_NAME_LEN
        cdef fq_wslot w, sw
        cdef uint64_t total, spill_total = 0
        cdef uint64_t me = fq_self_ident()
        cdef int64_t patience
        cdef int rc
        cdef char *spill = NULL
        cdef bytes spill_name = None
        cdef _Serialized ring_item = None
        cdef bint written = False
        cdef int pool_i = -1, make = 0, queued = 0
        cdef uint64_t gen = 0
        cdef int64_t pool_deadline
        cdef _SegMap seg = None
        if nbufs >= 9:
            lens = <uint64_t*>malloc(8 * (nbufs + 1))
            if lens == NULL:
                raise MemoryError
        try:
            lens[0] = len(s.main)
            for i in range(nbufs):
                lens[i + 1] = memoryview(s.bufs[i]).nbytes
            total = fq_payload_len(nbufs, lens[0], lens + 1)
            if total == <uint64_t>-1 or total > _spill_above(self.q.cap):
                # Too large for the ring: the payload goes to a one-off segment, the ring
                # record carries its name. The name is in the reserved record before the
                # segment exists, so whoever abandons the record of a producer killed on the
                # way (fq_peek) unlinks the segment: a SIGKILL leaks no /dev/shm entry.
                spill_total = total if total != <uint64_t>-1 else 0
                if spill_total == 0 or spill_total > (<uint64_t>1 << 40):
                    raise ValueError("item too large for a ProcessQueue")
                # a pooled segment when one is to be had (mapped here already, most often),
                # else a one-off one (see "the spill pool" in shmq.h)
                self._pool_tidy()
                pool_i = fq_pool_take(&self.q, me, spill_total, &gen, &make, &queued)
                if pool_i < 0 and pool_patience < 0:
                    raise Full  # every pooled segment is busy: the backlog waits for one, not a new one
                if pool_i < 0 and pool_patience > 0:
                    # A reader hands one back within a copy's time, most often: cheaper than a new
                    # one. The feeder (accepted) waits as long as queued items hold them, as it
                    # waits for room in the ring, unless join_thread() (at exit too) waits for it;
                    # otherwise (views, writers) a slice at most.
                    pool_deadline = fq_now_ns() + pool_patience
                    self._member()
                    while pool_i < 0 and (fq_now_ns() < pool_deadline or (accepted and queued and not self._draining)):
                        with nogil:
                            fq_wait_not_full(&self.q, min(FQ_SLICE_NS, max(pool_deadline - fq_now_ns(), 1000000)))
                        if PyErr_CheckSignals() < 0:
                            raise KeyboardInterrupt
                        if self.q.hdr.shutdown == FQ_SHUT_IMMEDIATE:
                            raise ShutDown
                        pool_i = fq_pool_take(&self.q, me, spill_total, &gen, &make, &queued)
                if pool_i >= 0:
                    seg = self._pool_map(pool_i, gen, make, spill_total, NULL)
                    spill_name = seg.name
                else:
                    spill_name = b"/fastq-" + os.urandom(12).hex().encode()
                ring_item = _Serialized.__new__(_Serialized)
                ring_item.kind, ring_item.main, ring_item.bufs = FQ_KIND_SPILL, spill_name, None
                total = fq_payload_len(0, name_len, NULL)
            rc = fq_reserve(&self.q, me, total, &w, 0, accepted)  # uncontended: no GIL round trip
            while rc != FQ_OK:
                if rc == FQ_LOCKED:
                    # held by another process: wait for it without the GIL, a slice at a time
                    # (or what is left of the timeout; put_nowait waits one slice at most)
                    self._member()
                    patience = FQ_SLICE_NS if not block else min(FQ_SLICE_NS, _remaining(deadline))
                    if patience > 0:
                        with nogil:
                            rc = fq_reserve(&self.q, me, total, &w, patience, accepted)
                    if rc == FQ_OK:
                        break
                    if rc == FQ_LOCKED and (not block or _remaining(deadline) <= 0):
                        raise Full
                if rc == FQ_AGAIN:
                    if not block or _remaining(deadline) <= 0:
                        raise Full
                    self._member()
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
                if seg is not None:
                    sw.payload = seg.base
                    self._write(&sw, s, lens, nbufs, spill_total)
                    if fq_pool_fill(&self.q, pool_i, me, w.pos) != FQ_OK:
                        pool_i = -1  # judged dead and robbed of it: the item is lost, as a robbed publish's
                        return 0
                    pool_i = -1  # filled: its reader hands it back
                elif ring_item is not None:
                    self._make_room(spill_total)
                    if self._released:  # under the GIL up to the create: no file after the last holder's look
                        _raise_released()
                    rc = fq_spill_create(spill_name, spill_total, &spill)
                    if rc < 0:
                        spill_name = None  # nothing of ours to unlink
                        if rc == -errno.ENOSPC:
                            raise _no_room_for_spill(spill_total)
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
                fq_spill_unlink(spill_name, FQ_SPILL_NAME_LEN)  # one-off only: a pooled one stays
            if pool_i >= 0:
                fq_pool_put_back(&self.q, pool_i, me)  # the put failed before its item was in

    cdef _SegMap _pool_map(self, int i, uint64_t gen, int make, uint64_t need, const char *name):
        """Pool entry i's segment, mapped in this process: from this handle's cache when it is
        the same generation, else opened (the reader of the record naming it: `name`, and None
        when it is missing) or made anew (the writer, whose entry has none that fits)."""
        cdef char *base = NULL
        cdef uint64_t size = 0
        cdef char made[FQ_SPILL_NAME_LEN + 1]
        cdef int rc
        cdef _SegMap m = self._pool_maps[i]
        if not make and m is not None and m.gen == (gen & 0xffffff) and m.size >= need:
            return m
        cdef const char *opened = name
        if not make:
            if name == NULL:
                fq_pool_name(&self.q, i, gen, made)
                opened = made
            rc = fq_spill_open(opened, FQ_SPILL_NAME_LEN, 1, &base, &size)
            if rc == FQ_AGAIN and name != NULL:
                return None
            if (rc == FQ_AGAIN or (rc == 0 and size < need)) and name == NULL:
                if rc == 0:
                    munmap(base, size)
                make = 1  # the writer's entry lost its segment (or it shrank): make one
            elif rc == FQ_CORRUPT:
                raise QueueCorrupted("a large item's segment has an inconsistent size")
            elif rc != 0:
                if rc == -errno.EMFILE or rc == -errno.ENFILE:
                    raise OSError(-rc, f"{os.strerror(-rc)}: cannot open the segment of a large item")
                _raise_for(rc)
        if make:
            self._pool_maps[i] = None  # the segment it replaces: its pages go with our mapping
            m = None
            self._make_room(need + need // 8 + 65536)  # fq_pool_make's size
            if self._released:  # as for a one-off segment
                _raise_released()
            rc = fq_pool_make(&self.q, i, need, &gen, &base, &size)
            if rc == -errno.ENOSPC:
                raise _no_room_for_spill(need)
            if rc != 0:
                raise OSError(-rc, os.strerror(-rc))
        fq_pool_name(&self.q, i, gen, made)
        m = _SegMap.__new__(_SegMap)
        m.base, m.size, m.gen, m.name = base, size, gen & 0xffffff, made[:FQ_SPILL_NAME_LEN]
        self._pool_maps[i] = m
        return m

    cdef bint _make_room(self, uint64_t size):
        """Whether /dev/shm has room for a new segment of `size` bytes, after removing the pooled
        segments nobody uses (idle or not) if it had not."""
        st = os.statvfs("/dev/shm")
        if <uint64_t>st.f_bavail * st.f_frsize >= size:
            return True
        if fq_pool_trim(&self.q, fq_self_ident(), 1) == 0:
            return False
        self._drop_stale_maps()  # an unlinked segment's pages go with its last mapping
        st = os.statvfs("/dev/shm")
        return <uint64_t>st.f_bavail * st.f_frsize >= size

    cdef _pool_tidy(self):
        """Once a second: unmap this handle's mappings of pool segments since replaced or
        removed (their memory goes only when every process lets go), and remove idle ones."""
        cdef int64_t now = fq_now_ns()
        cdef int i
        if now - self._pool_tidy_at < 1000000000:
            return
        self._pool_tidy_at = now
        fq_pool_trim(&self.q, fq_self_ident(), 0)
        self._drop_stale_maps()

    cdef _drop_stale_maps(self):
        cdef int i
        for i in range(FQ_POOL):
            m = self._pool_maps[i]
            if m is not None and fq_pool_gen(&self.q, i) != (<_SegMap>m).gen:
                self._pool_maps[i] = None

    cdef _enqueue(self, _Serialized s, block, timeout):
        cdef int64_t deadline = _deadline_ns(block, timeout)
        cdef uint64_t size
        if self.q.hdr.maxsize:
            self._put_serialized(s, block, deadline, 0, _pool_patience(block, deadline))
            return
        # Unbounded, like multiprocessing.Queue: put never blocks. Items that find the ring full
        # (or, large ones, every pooled segment queued) wait, in order, in this process's backlog
        # for a feeder thread.
        if not self._backlog:  # per-thread order holds: a thread's earlier item is in the ring
            try:
                self._put_serialized(s, False, -1, 0, -1)
                return
            except Full:
                pass
        size = len(s.main) + (sum([memoryview(b).nbytes for b in s.bufs]) if s.bufs else 0)
        if size > _spill_above(self.q.cap) and not self._make_room(size):
            raise _no_room_for_spill(size)  # the feeder would make its segment: fail this put, not that
        if self._member() < 0:  # no slot to count a backlog in: wait for room, as a bounded put would
            self._put_serialized(s, block, deadline, 0, _pool_patience(block, deadline))
            return
        with self._backlog_lock:
            if self.q.hdr.shutdown:
                raise ShutDown
            self._backlog.append(s)
            fq_pending_add(&self.q, 1)  # unfinished from now on, for join() in every process
            if self._feeder is None:
                self._feeder = threading.Thread(target=self._feed, name="fastq-feeder", daemon=True)
                self._feeder.start()
                _register_flush(self)

    def _feed(self):
        cdef _Serialized s
        cdef Py_ssize_t n
        while True:
            with self._backlog_lock:
                if not self._backlog:
                    self._feeder = None
                    return
                s = self._backlog[0]
            try:
                self._put_serialized(s, True, -1, 1, FQ_SLICE_NS)
            except ShutDown:  # an immediate shutdown: the backlog is discarded
                with self._backlog_lock:
                    n = len(self._backlog)
                    self._backlog.clear()
                    self._feeder = None
                fq_pending_add(&self.q, -n)
                return
            except BaseException as exc:  # this item is lost (e.g. no room for its segment); later ones are not
                self._feed_error = exc
            with self._backlog_lock:
                if not self._backlog or self._backlog[0] is not s:
                    continue  # shutdown(immediate) cleared the backlog meanwhile, and its count
                self._backlog.popleft()
            fq_pending_add(&self.q, -1)

    cdef _raise_feed_error(self):
        exc, self._feed_error = self._feed_error, None
        raise OSError(getattr(exc, "errno", None) or 0,
                      f"an item put earlier in this process could not be sent: {exc}") from exc

    cdef int _check_put(self) except -1:
        self._check()
        if self._closed:
            raise ValueError(f"Queue {self!r} is closed")
        if self._feed_error is not None:
            self._raise_feed_error()
        return 0

    def put(self, obj, block=True, timeout=None):
        """Put obj into the queue. With maxsize > 0, block (at most `timeout` seconds) while
        the queue is full, then raise Full; with block false raise Full at once. An unpicklable
        item raises here and leaves the queue as it was. Raises ShutDown after shutdown(), and
        OSError if an item put earlier by this process could not be sent by the feeder thread
        (that item is lost; this one is not queued)."""
        self._check_put()
        if self.q.hdr.shutdown:
            raise ShutDown
        self._enqueue(_serialize(obj, self._dumps), block, timeout)

    def put_nowait(self, obj):
        return self.put(obj, False)

    def put_many(self, items, block=True, timeout=None):
        """Put every item in order (fastq extra). On a timeout (or with block false and no
        room) raise Full after inserting a prefix; its `inserted` attribute says how many."""
        self._check_put()
        batch = [_serialize(obj, self._dumps) for obj in items]  # every error before anything is queued
        cdef int64_t deadline = _deadline_ns(block, timeout)
        cdef Py_ssize_t done = 0
        try:
            for s in batch:
                if self.q.hdr.maxsize:
                    self._put_serialized(s, block, deadline, 0, _pool_patience(block, deadline))
                else:
                    self._enqueue(s, block, None)
                done += 1
        except (Full, ShutDown) as exc:
            exc.inserted = done
            raise

    # ---- get ----

    cdef object _take(self, fq_rslot *r, bint copy=True):
        """Claim, copy out and decode the record peek found: the item, a _Failed if it does not
        decode, or _NOT_YET if another consumer took it (or took it from us, judging us dead).
        Everything that can fail before the copy (opening a spill segment, allocating) happens
        before the claim, so that an error leaves the item queued."""
        cdef fq_payload p, sp
        cdef uint64_t spill_size = 0
        cdef char *spill = NULL
        cdef int rc
        rc = fq_read_payload(r, &p)
        if rc == FQ_CORRUPT:  # still READY at head: take it out, or it would block the queue for good
            return self._drop_corrupt(r, NULL, "a record's payload is inconsistent")
        if rc != FQ_OK:
            return _NOT_YET  # reused under us: peek again
        if p.kind != FQ_KIND_SPILL:
            return self._take_from(r, &p, r.len, NULL)
        if p.main_len == FQ_SPILL_NAME_LEN and fq_spill_pooled(p.main):
            return self._take_pooled(r, &p, copy)
        rc = fq_spill_open(p.main, p.main_len, 0, &spill, &spill_size)
        # The name was read before any claim: the record may have been taken and its slot reused
        # since (a name being written, a segment being made). _drop_corrupt claims first, so it
        # raises only for a record still READY, and peeks again otherwise.
        if rc == FQ_AGAIN:
            return self._drop_corrupt(r, NULL, "a large item's segment is missing")
        if rc == FQ_CORRUPT:
            return self._drop_corrupt(r, NULL, "a large item's segment name or size is inconsistent")
        if rc != 0:
            if rc == -errno.EMFILE or rc == -errno.ENFILE:
                raise OSError(-rc, f"{os.strerror(-rc)}: cannot open the segment of a large item "
                              "(it stays queued)")
            _raise_for(rc)
        if fq_payload_parse(spill, spill_size, &sp) != FQ_OK or sp.kind == FQ_KIND_SPILL:
            munmap(spill, spill_size)
            return self._drop_corrupt(r, p.main, "a spill segment is inconsistent")
        if not copy and sp.kind == FQ_KIND_PICKLE and sp.nbufs:
            held = _Held.__new__(_Held)  # owns the mapping from here
            (<_Held>held).base, (<_Held>held).size = spill, spill_size
            return self._take_view(r, &sp, <_Held>held, -1, p.main)
        try:
            return self._take_from(r, &sp, spill_size, p.main)
        finally:
            munmap(spill, spill_size)

    cdef object _take_pooled(self, fq_rslot *r, fq_payload *p, bint copy):
        """_take of a record naming a pooled segment: mapped already, most often."""
        cdef fq_payload sp
        cdef uint64_t gen
        cdef int i = fq_pool_parse(&self.q, p.main, p.main_len, &gen)
        if i < 0:
            return self._drop_corrupt(r, NULL, "a large item's segment name is not this queue's")
        seg = self._pool_map(i, gen, 0, 0, p.main)
        if seg is None:
            return self._drop_corrupt(r, NULL, "a large item's segment is missing")
        if fq_payload_parse((<_SegMap>seg).base, (<_SegMap>seg).size, &sp) != FQ_OK or sp.kind == FQ_KIND_SPILL:
            return self._drop_corrupt(r, NULL, "a spill segment is inconsistent", i)
        if not copy and sp.kind == FQ_KIND_PICKLE and sp.nbufs:
            held = _Held.__new__(_Held)
            (<_Held>held).base, (<_Held>held).size, (<_Held>held).seg = (<_SegMap>seg).base, (<_SegMap>seg).size, seg
            return self._take_view(r, &sp, <_Held>held, i, NULL)
        return self._take_from(r, &sp, (<_SegMap>seg).size, NULL, i)  # seg stays mapped meanwhile

    cdef object _take_view(self, fq_rslot *r, fq_payload *p, _Held held, int pool_i, const char *spill_name):
        """_take without the copy (get(copy=False)): the item's out-of-band buffers are read-only
        views of its spill segment, which `held` keeps: a one-off one (its name removed once the
        claim is won), or pool entry pool_i's, HELD for us until the last view dies."""
        cdef uint64_t me = fq_self_ident()
        cdef uint64_t o = 16 + 8 * <uint64_t>p.nbufs + p.main_len, n
        cdef uint32_t i
        spans = []
        for i in range(p.nbufs):  # each length read once, checked against the mapping
            n = fq_buf_len(p, i)
            o = fq_buf_start(o)
            if o > held.size or n > held.size - o:
                return self._drop_corrupt(r, spill_name, "a record's buffer lengths are inconsistent", pool_i)
            spans.append((o, n))
            o += n
        if fq_claim(&self.q, r, me) != FQ_OK:
            return _NOT_YET
        if pool_i >= 0:
            if fq_pool_hold(&self.q, pool_i, r.pos, me) != FQ_OK:
                fq_release(&self.q, r, me)
                return _NOT_YET  # judged dead and robbed: the record is counted lost
            held.queue, held.pool_i, held.ident = self, pool_i, me
            _live_held.add(held)
        elif spill_name != NULL:
            fq_spill_unlink(spill_name, FQ_SPILL_NAME_LEN)  # ours now: nobody else opens it
        main = PyBytes_FromStringAndSize(p.main, p.main_len)
        if fq_release(&self.q, r, me) != FQ_OK:
            return _NOT_YET  # counted lost by whoever judged us dead: not delivered twice
        view = memoryview(held)
        return self._decode(p.kind, main, [view[o:o + n] for o, n in spans])

    cdef object _take_from(self, fq_rslot *r, fq_payload *p, uint64_t total, const char *spill_name,
                           int pool_i=-1):
        """_take's second half, over the payload p (`total` bytes): the record's own, or the
        mapped segment of a spilled item, whose name spill_name is (a one-off one) or which is
        pool entry pool_i's."""
        cdef uint64_t me = fq_self_ident()
        cdef int rc
        cdef list bufs = None
        if p.kind == FQ_KIND_BYTEARRAY:
            main = PyByteArray_FromStringAndSize(NULL, p.main_len)
        else:
            main = PyBytes_FromStringAndSize(NULL, p.main_len)
        if p.nbufs:
            bufs = _alloc_bufs(p, total)
            if bufs is None:
                return self._drop_corrupt(r, spill_name, "a record's buffer lengths are inconsistent")
        if fq_claim(&self.q, r, me) != FQ_OK:
            return _NOT_YET
        try:
            if spill_name != NULL:
                fq_spill_unlink(spill_name, FQ_SPILL_NAME_LEN)  # ours now: nobody else opens it
            _fill(p, main, bufs)
        finally:
            rc = fq_release(&self.q, r, me)
            if pool_i >= 0:
                fq_pool_hand_back(&self.q, pool_i, r.pos)  # after the release: see shmq.h
        if rc != FQ_OK:
            return _NOT_YET  # judged dead meanwhile, and the record counted lost: the copy may be torn
        return self._decode(p.kind, main, bufs)

    cdef object _drop_corrupt(self, fq_rslot *r, const char *spill_name, str why, int pool_i=-1):
        """A READY record that can never be read: take it out of the queue (so the rest flows)
        and raise QueueCorrupted; _NOT_YET if another consumer took it first."""
        cdef uint64_t me = fq_self_ident()
        if fq_claim(&self.q, r, me) != FQ_OK:
            return _NOT_YET
        if spill_name != NULL:
            fq_spill_unlink(spill_name, FQ_SPILL_NAME_LEN)
        fq_release(&self.q, r, me)
        if pool_i >= 0:
            fq_pool_hand_back(&self.q, pool_i, r.pos)
        raise QueueCorrupted(why)

    cdef object _decode(self, uint32_t kind, object main, list bufs):
        if kind != FQ_KIND_PICKLE:
            return main
        try:
            if self._loads is not None:
                return self._loads(main)
            return pickle.loads(main, buffers=bufs) if bufs else pickle.loads(main)
        except Exception as exc:  # the item is taken out: it fails where it is returned
            failed = _Failed.__new__(_Failed)
            (<_Failed>failed).exc = exc
            return failed

    cdef int _check_get(self) except -1:
        self._check()
        if self._closed:
            raise ValueError(f"Queue {self!r} is closed")
        if self._failed is not None:  # get_many() took it after items it returned: it raises now
            exc, self._failed = self._failed, None
            raise exc
        return 0

    cdef object _get_one(self, block, int64_t deadline, bint copy=True):
        """The next item, or a _Failed."""
        cdef fq_rslot r
        cdef int rc
        while True:
            if self.q.hdr.shutdown == FQ_SHUT_IMMEDIATE:
                with nogil:
                    fq_discard_all(&self.q, fq_self_ident())  # whatever a late writer published
                raise ShutDown
            rc = fq_peek(&self.q, &r)  # never blocks
            if rc == FQ_OK:
                item = self._take(&r, copy)
                if item is not _NOT_YET:
                    return item
                continue
            if rc != FQ_AGAIN:
                _raise_for(rc)
            if self.q.hdr.shutdown and self.q.hdr.head == self.q.hdr.tail and fq_pending(&self.q, 1) == 0:
                raise ShutDown  # drained, and no backlog holds an item accepted before the shutdown
            if not block or _remaining(deadline) <= 0:
                raise Empty
            self._member()
            self._pool_tidy()
            with nogil:
                fq_wait_not_empty(&self.q, min(FQ_SLICE_NS, _remaining(deadline)))
            if PyErr_CheckSignals() < 0:
                raise KeyboardInterrupt

    def get(self, block=True, timeout=None, *, copy=True):
        """Remove and return an item. Block (at most `timeout` seconds) until one is there,
        then raise Empty; with block false raise Empty at once. Raises ShutDown once the queue
        is shut down and empty (at once after an immediate shutdown). An item that cannot be
        unpickled raises here, once, and is gone.

        copy=False (fastq extra): a large item's out-of-band buffers (numpy arrays over a quarter
        of the ring) are not copied out: they are read-only views of the shared memory it came
        in, kept for this process as long as any of them lives. Other items are copied as usual."""
        self._check_get()
        item = self._get_one(block, _deadline_ns(block, timeout), copy)
        if type(item) is _Failed:
            raise (<_Failed>item).exc
        return item

    def get_nowait(self):
        return self.get(False)

    def get_many(self, max_items, block=True, timeout=None):
        """Remove and return a list of up to `max_items` items, waiting only for the first
        (fastq extra). If an item after the first cannot be unpickled, the items before it are
        returned and the next get() or get_many() raises its error."""
        self._check_get()
        cdef Py_ssize_t n = max_items
        if n < 1:
            raise ValueError("'max_items' must be at least 1")
        item = self._get_one(block, _deadline_ns(block, timeout))
        if type(item) is _Failed:
            raise (<_Failed>item).exc
        out = [item]
        cdef fq_rslot r
        cdef int rc
        while len(out) < n:  # then take what is there, without waiting
            rc = fq_peek(&self.q, &r)
            if rc != FQ_OK or self.q.hdr.shutdown == FQ_SHUT_IMMEDIATE:
                break  # an error (QueueCorrupted) raises at the next get, with nothing taken
            try:
                item = self._take(&r)
            except QueueCorrupted as exc:  # a record no one can read, taken out: it raises once
                self._failed = exc
                break
            except Exception:
                break  # nothing was claimed (EMFILE...): the item stays queued, the next get raises
            if item is _NOT_YET:
                continue
            if type(item) is _Failed:
                self._failed = (<_Failed>item).exc
                break
            out.append(item)
        return out

    # ---- asyncio (fastq/_aio.py) ----

    def _async_ready(self, timeout):
        """For an event loop's waiter thread: wait at most `timeout` seconds, without the GIL,
        until a get may find an item or the queue is shut down or closed (True), else False.
        Takes nothing: the woken coroutine gets the item itself (or finds it gone and waits
        again). fq_peek is the sync get's own, so a killed writer is handled as there."""
        self._check()
        cdef int64_t deadline = _deadline_ns(True, timeout)
        cdef fq_rslot r
        while True:
            if self._closed or self.q.hdr.shutdown or self._failed is not None:
                return True
            if fq_peek(&self.q, &r) != FQ_AGAIN:
                return True  # an item, or an error that the get will raise
            if _remaining(deadline) <= 0:
                return False
            self._member()
            with nogil:
                fq_wait_not_empty(&self.q, min(FQ_SLICE_NS, _remaining(deadline)))

    def _async_room(self, timeout):
        """For an event loop's waiter thread: the blocking put's wait for room, once: at most
        `timeout` seconds (and one slice), without the GIL, until the cursors that the coroutine's
        failed put recorded change. Then the coroutine tries again, as the blocking put does each
        slice (which also lets a dead reader's space be taken back). Always True."""
        self._check()
        if self._closed or self.q.hdr.shutdown:
            return True
        cdef int64_t deadline = _deadline_ns(True, timeout)
        self._member()
        with nogil:
            fq_wait_not_full(&self.q, min(FQ_SLICE_NS, _remaining(deadline)))
        return True

    def async_get(self, timeout=None):
        """Remove and return an item, awaiting one at most `timeout` seconds (fastq extra).

        Raises ShutDown as get() does, and on a timeout an exception that is both Empty and
        TimeoutError. A cancelled call took nothing. Each event loop awaiting this queue has one
        thread waiting for it, whatever the number of awaiting coroutines."""
        from fastq import _aio
        return _aio.get(self, timeout)

    def async_put(self, obj, timeout=None):
        """Put an item, awaiting room at most `timeout` seconds (fastq extra; only a queue with
        a maxsize ever waits: its loop's waiter thread waits as the blocking put does). A
        cancelled call inserted nothing."""
        from fastq import _aio
        return _aio.put(self, obj, timeout)

    def async_get_many(self, max_items, timeout=None):
        """Remove and return up to `max_items` items, awaiting only the first (fastq extra)."""
        from fastq import _aio
        return _aio.get_many(self, max_items, timeout)

    def __aiter__(self):
        """Items until the queue is shut down and drained (fastq extra)."""
        from fastq import _aio
        return _aio.iterate(self)

    # ---- sizes ----

    def qsize(self):
        """Return the approximate number of items (not reliable!), every process's backlog
        included."""
        self._check()
        cdef uint64_t items = 0
        fq_items(&self.q, &items)
        return items + fq_pending(&self.q, 0)

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
        """Block until every item ever put (a backlog's too) has been taken and task_done()
        called for it. With a timeout (fastq extra), return False if that did not happen in
        time, else True."""
        self._check()
        cdef int64_t deadline = _deadline_ns(True, timeout)
        while fq_unfinished(&self.q):
            if _remaining(deadline) <= 0:
                return False
            self._member()
            with nogil:
                if self.q.hdr.shutdown == FQ_SHUT_IMMEDIATE:
                    fq_discard_all(&self.q, fq_self_ident())  # a late writer's item counts done too
                # a reader killed while copying holds its record until somebody looks: once a
                # slice, so that its lost item is counted done even when nothing else moves
                fq_advance_free(&self.q, 2)
                fq_wait_joined(&self.q, min(FQ_SLICE_NS, _remaining(deadline)))
            if PyErr_CheckSignals() < 0:
                raise KeyboardInterrupt
        if self._released:  # the anonymous zeros count nothing unfinished: not a join
            _raise_released()
        return True

    # ---- shutdown and close ----

    def shutdown(self, immediate=False):
        """Shut the queue down in every process: put raises ShutDown; get raises it once the
        queue is empty (at once with immediate, which discards queued items, counting them
        done). Every blocked caller wakes up. Never waits for another process."""
        self._check()
        cdef Py_ssize_t n
        cdef int rc
        fq_shutdown(&self.q, FQ_SHUT_IMMEDIATE if immediate else FQ_SHUT_GRACEFUL)
        if immediate:
            with self._backlog_lock:  # this process's backlog goes too
                n = len(self._backlog)
                self._backlog.clear()
            fq_pending_add(&self.q, -n)
            with nogil:
                rc = fq_discard_all(&self.q, fq_self_ident())
            if rc != FQ_OK:
                _raise_for(rc)

    @property
    def is_shutdown(self):
        self._check()
        return bool(self.q.hdr.shutdown)

    # ---- producer registration, for IterableQueue (iterable.py) ----
    # A token names a slot of the segment's participant table and its owner: (index, value).

    def _producer_register(self):
        """Register this process as a producer; returns a token."""
        self._check()
        cdef uint64_t value = fq_st(FQ_ROLE_PRODUCER, fq_self_ident())
        i = -1
        if fq_slot_count_live(&self.q, FQ_ROLE_PRODUCER) < FQ_MAX_PRODUCERS:
            i = fq_slot_claim(&self.q, FQ_ROLE_PRODUCER, fq_self_ident())
        if i < 0:
            raise RuntimeError(f"too many live producers for one IterableQueue (at most {FQ_MAX_PRODUCERS})")
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
        """Nothing queued, nothing being written, no backlog anywhere: true emptiness, for
        IterableQueue."""
        self._check()
        return self.q.hdr.head == self.q.hdr.tail and not self._backlog and fq_pending(&self.q, 1) == 0

    def close(self):
        """This process will put no more items (as in multiprocessing). Items still in the
        backlog are flushed by the feeder thread."""
        self._closed = True

    def join_thread(self):
        """Wait until this process's backlog is in the ring (multiprocessing: the feeder thread).
        Raises OSError if the feeder had to drop an item (see put)."""
        feeder = self._feeder
        if feeder is not None:
            self._draining = True  # large items go to segments of their own rather than wait for a reader
            try:
                feeder.join()
            finally:
                self._draining = False
        if self._feed_error is not None:
            self._raise_feed_error()

    def cancel_join_thread(self):
        """Do not wait for the backlog at exit (as in multiprocessing)."""
        self._cancel_flush = True


# ---- regions: where a reader copies large out-of-band buffers (numpy arrays) ----
# A bytearray of many MiB comes from malloc as fresh pages that fault in one by one as the copy
# touches them (and get_many's batches make glibc trim and regrow its heap each time): the copy
# then runs at a fifth of memcpy speed. A _Region is populated in one call, with huge pages where
# the kernel offers them, and goes back to a small cache of warm mappings when its last user lets
# go. The cache is this process's, used under the GIL.

cdef char *_cache_base[CACHE_ENTRIES]
cdef size_t _cache_len[CACHE_ENTRIES]
cdef int64_t _cache_at[CACHE_ENTRIES]   # when it was freed
cdef int _cache_n = 0
cdef size_t _cache_bytes = 0


cdef char *_cache_take(int i) noexcept:
    """Remove entry i from the cache and return its mapping."""
    global _cache_n, _cache_bytes
    cdef char *p = _cache_base[i]
    _cache_bytes -= _cache_len[i]
    _cache_n -= 1
    _cache_base[i], _cache_len[i], _cache_at[i] = _cache_base[_cache_n], _cache_len[_cache_n], _cache_at[_cache_n]
    return p


cdef void _cache_drop(int i) noexcept:
    cdef size_t n = _cache_len[i]
    munmap(_cache_take(i), n)


cdef void _cache_trim(int64_t now) noexcept:
    cdef int i = 0
    while i < _cache_n:
        if now - _cache_at[i] > CACHE_IDLE_NS:
            _cache_drop(i)
        else:
            i += 1


cdef char *_region_map(size_t *length) except NULL:
    """A mapping of *length bytes (fq_mem_round): a cached one of that size or a little larger
    (then *length is its size), or a new one."""
    cdef size_t maplen = length[0]
    cdef int i, best = -1
    cdef char *p
    _cache_trim(fq_now_ns())
    for i in range(_cache_n):
        if maplen <= _cache_len[i] <= maplen + maplen // 4 and (best < 0 or _cache_len[i] < _cache_len[best]):
            best = i
    if best >= 0:
        length[0] = _cache_len[best]
        return _cache_take(best)
    with nogil:
        p = fq_mem_map(maplen)
    if p == NULL:
        raise MemoryError(f"cannot map {maplen} bytes for a large item")
    return p


cdef void _region_unmap(char *base, size_t maplen) noexcept:
    """Keep a freed mapping for the next item (evicting the oldest), or unmap it."""
    global _cache_n, _cache_bytes
    cdef int64_t now = fq_now_ns()
    cdef int i, oldest
    _cache_trim(now)
    if maplen > CACHE_BYTES:
        munmap(base, maplen)
        return
    while _cache_n == CACHE_ENTRIES or _cache_bytes + maplen > CACHE_BYTES:
        oldest = 0
        for i in range(1, _cache_n):
            if _cache_at[i] < _cache_at[oldest]:
                oldest = i
        _cache_drop(oldest)
    _cache_base[_cache_n], _cache_len[_cache_n], _cache_at[_cache_n] = base, maplen, now
    _cache_n += 1
    _cache_bytes += maplen


@cython.final
cdef class _Region:
    """Writable memory holding one out-of-band buffer of a received item: what pickle hands to the
    item's reconstructor (numpy.frombuffer keeps it alive as the array's base). Pickles as a
    bytearray."""
    cdef char *base
    cdef size_t maplen
    cdef Py_ssize_t size

    def __cinit__(self, Py_ssize_t size):
        self.maplen = fq_mem_round(size)
        if self.maplen == 0:
            raise MemoryError
        self.base = _region_map(&self.maplen)
        self.size = size

    def __dealloc__(self):
        if self.base != NULL:
            _region_unmap(self.base, self.maplen)

    def __getbuffer__(self, Py_buffer *view, int flags):
        PyBuffer_FillInfo(view, self, self.base, self.size, 0, flags)

    def __releasebuffer__(self, Py_buffer *view):
        pass

    def __len__(self):
        return self.size

    def __reduce__(self):
        return bytearray, (bytes(memoryview(self)),)


cdef char *_buf_data(object buf) noexcept:
    return (<_Region>buf).base if type(buf) is _Region else PyByteArray_AS_STRING(buf)


cdef Py_ssize_t _buf_size(object buf) noexcept:
    return (<_Region>buf).size if type(buf) is _Region else PyByteArray_GET_SIZE(buf)


cdef list _alloc_bufs(fq_payload *p, uint64_t total):
    """The objects for a parsed payload's out-of-band buffers (bytearrays, _Regions from
    REGION_FROM bytes), or None if their lengths do not fit in `total` bytes. Each length is read
    once from shared memory: a process rewriting the segment under us must not make the copy
    overrun what was allocated."""
    cdef uint64_t o = 16 + 8 * <uint64_t>p.nbufs + p.main_len, n
    cdef uint32_t i
    bufs = []
    for i in range(p.nbufs):
        n = fq_buf_len(p, i)
        o = fq_buf_start(o)
        if o > total or n > total - o:
            return None
        bufs.append(_Region(n) if n >= REGION_FROM else PyByteArray_FromStringAndSize(NULL, n))
        o += n
    return bufs


cdef int _fill(fq_payload *p, object main, list bufs) except -1:
    """Copy a payload out into the objects allocated for it (their sizes, not the segment's)."""
    cdef char *dst = PyByteArray_AS_STRING(main) if p.kind == FQ_KIND_BYTEARRAY else PyBytes_AS_STRING(main)
    cdef uint64_t o = 16 + 8 * <uint64_t>p.nbufs + p.main_len, n
    cdef const char *base = p.main - (16 + 8 * <uint64_t>p.nbufs)
    cdef Py_ssize_t i
    if p.main_len > COPY_WITHOUT_GIL:
        with nogil:
            memcpy(dst, p.main, p.main_len)
    else:
        memcpy(dst, p.main, p.main_len)
    if bufs is None:
        return 0
    for i in range(len(bufs)):
        n = _buf_size(bufs[i])
        o = fq_buf_start(o)
        dst = _buf_data(bufs[i])
        if n > COPY_WITHOUT_GIL:
            with nogil:
                memcpy(dst, base + o, n)
        else:
            memcpy(dst, base + o, n)
        o += n
    return 0


cdef _raise_released():
    raise ValueError("ProcessQueue was let go at exit (threads still used it)")


def _let_go_ref(ref):
    q = ref()
    if q is None:
        return
    # unmap at exit only when no other thread is left that might be inside a call on it (a daemon
    # thread blocked in get(), a feeder after cancel_join_thread()): that would crash it; the
    # files go either way
    if _only_thread():
        (<ProcessQueue>q)._let_go()
    else:
        (<ProcessQueue>q)._release_files()


def _only_thread():
    """No other thread runs here: threading's count misses _thread.start_new_thread's threads,
    the kernel's does not (a library's native threads count too: then we release, which is safe)."""
    if threading.active_count() != 1:
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def _let_go_in_child(q):
    _let_go_at_exit(q)  # multiprocessing cleared the parent's finalizers in this child: anew


cdef _let_go_at_exit(ProcessQueue q):
    # multiprocessing runs these at exit, in the parent (atexit) and in its children (before
    # os._exit); a fork child gets its own through the after-fork hook
    import weakref
    from multiprocessing import util
    util.Finalize(q, _let_go_ref, args=(weakref.ref(q),), exitpriority=-10)  # after the flush (-5)
    util.register_after_fork(q, _let_go_in_child)


def _flush_at_exit(ref):
    q = ref()
    if q is not None and not (<ProcessQueue>q)._cancel_flush:
        try:
            q.join_thread()
        except OSError:
            pass  # at exit there is nobody left to tell


cdef _register_flush(ProcessQueue q):
    # At exit (in children too), wait for the backlog, as multiprocessing joins its feeder.
    import weakref
    from multiprocessing import util
    util.Finalize(q, _flush_at_exit, args=(weakref.ref(q),), exitpriority=-5)
