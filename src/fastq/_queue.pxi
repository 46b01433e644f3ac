# The in-process Queue family on the C ring (_c/ring.h) and conditions (_c/wait.h).
# Fast path: the GIL protects the ring, so put/get take no lock and make no system call unless
# somebody waits. A subclass that overrides _init/_qsize/_put/_get runs the pure core's exact
# algorithm (fastq.pure._queue) on this object instead, with a real mutex and conditions.

from cpython.object cimport PyObject, PyTypeObject, traverseproc, visitproc, inquiry
from cpython.pythread cimport (PyThread_type_lock, PyThread_allocate_lock, PyThread_free_lock,
                               PyThread_acquire_lock, PyThread_release_lock, PyThread_get_thread_ident,
                               NOWAIT_LOCK, WAIT_LOCK)
import threading
import types

from fastq.errors import Empty, Full, ShutDown
from fastq.pure import _queue as _pyq

cdef extern from "ring.h":
    ctypedef struct fq_ring:
        PyObject **buf
        Py_ssize_t cap
        Py_ssize_t head
        Py_ssize_t count
    int fq_ring_init(fq_ring *r) except -1
    void fq_ring_free(fq_ring *r)
    void fq_ring_clear(fq_ring *r)
    PyObject **fq_ring_slot(fq_ring *r, Py_ssize_t i)
    int fq_ring_push(fq_ring *r, object item) except -1
    object fq_ring_pop_front(fq_ring *r)
    object fq_ring_pop_back(fq_ring *r)
    int fq_heap_push(fq_ring *r, object item) except -1
    object fq_heap_pop(fq_ring *r)

cdef extern from "wait.h":
    ctypedef long long fq_time_t
    ctypedef struct fq_cond:
        int waiters
    fq_time_t FQ_NO_DEADLINE
    int fq_cond_init(fq_cond *c) except -1
    void fq_cond_fini(fq_cond *c)
    void fq_cond_signal(fq_cond *c)
    fq_time_t fq_deadline(double timeout)
    int fq_cond_wait(fq_cond *c, fq_time_t deadline) except -1
    int fq_cond_watch(fq_cond *c, int fd, int delta) except -1

DEF KIND_FIFO = 0
DEF KIND_LIFO = 1
DEF KIND_HEAP = 2

cdef str _NEGATIVE_TIMEOUT = "'timeout' must be a non-negative number"
cdef tuple _HOOKS = ("_init", "_qsize", "_put", "_get")
cdef dict _hooked_types = {}  # type -> does it override a hook of its fastq base class?
cdef tuple _PY_BASES = (_pyq.Queue, _pyq.LifoQueue, _pyq.PriorityQueue)  # by kind


cdef inline fq_time_t _deadline(object block, object timeout) except? -2:
    """The monotonic deadline of a blocking call; ValueError for a negative timeout."""
    if timeout is None or not block:
        return FQ_NO_DEADLINE
    cdef double t = timeout
    if t < 0:
        raise ValueError(_NEGATIVE_TIMEOUT)
    return fq_deadline(t)


cdef bint _overrides_hooks(type cls) except -1:
    cached = _hooked_types.get(cls)
    if cached is None:
        base = next(b for b in cls.__mro__ if b in (PriorityQueue, LifoQueue, Queue))
        cached = any(getattr(cls, name) is not getattr(base, name) for name in _HOOKS)
        _hooked_types[cls] = cached
    return cached


cdef object _aio_module = None

cdef object _aio():
    # fastq/_aio.py brings asyncio: loaded on first use, not at `import fastq`
    global _aio_module
    if _aio_module is None:
        from fastq import _aio as module
        _aio_module = module
    return _aio_module


cdef object _NOTHING = object()  # a fast path that could not complete


cdef class _QueueView:
    """A live, read-mostly view of a C queue's items, standing in for `queue.Queue.queue`
    (a deque, or a list for LifoQueue and PriorityQueue): len, iteration, indexing, `in`, clear()."""
    cdef Queue q

    def __cinit__(self, Queue q):
        self.q = q

    def __len__(self):
        return self.q.ring.count

    def __getitem__(self, Py_ssize_t i):
        cdef Py_ssize_t n = self.q.ring.count
        if i < 0:
            i += n
        if i < 0 or i >= n:
            raise IndexError("queue index out of range")
        return <object>fq_ring_slot(&self.q.ring, i)[0]

    def __iter__(self):
        return iter(self.q._snapshot())

    def __contains__(self, item):
        return item in self.q._snapshot()

    def __repr__(self):
        return f"{type(self).__name__}({self.q._snapshot()!r})"

    def clear(self):
        self.q._clear()


cdef class _ConditionView:
    """Stands in for queue.Queue's not_empty/not_full/all_tasks_done on the C fast path: `with`
    takes the mutex, notify()/notify_all() wake the C core's waiters (they re-check their
    condition). Waiting on it is not supported: call the queue's own blocking methods."""
    cdef Queue q
    cdef int which

    def __cinit__(self, Queue q, int which):
        self.q = q
        self.which = which

    def __enter__(self):
        return self.q.mutex.__enter__()

    def __exit__(self, *exc):
        return self.q.mutex.__exit__(*exc)

    def notify(self, n=1):
        self.q._signal(self.which)

    def notify_all(self):
        self.q._signal(self.which)

    def wait(self, timeout=None):
        raise RuntimeError("waiting on a fastq C queue's condition is not supported; use get/put/join")


@cython.auto_pickle(False)
cdef class Queue:
    """Create a queue object with a given maximum size.

    If maxsize is <= 0, the queue size is infinite.

    Drop-in for queue.Queue on a C core; adds put_many() and get_many().
    """
    cdef fq_ring ring
    cdef int kind
    cdef Py_ssize_t _maxsize
    cdef Py_ssize_t _unfinished
    cdef bint _shutdown
    cdef bint _hooked
    cdef fq_cond c_not_empty, c_not_full, c_tasks_done
    cdef PyThread_type_lock heap_lock      # keeps other threads out while comparisons run
    cdef unsigned long heap_owner
    cdef object _mutex, _not_empty, _not_full, _all_tasks_done, _queue_attr
    cdef dict __dict__
    cdef object __weakref__

    def __cinit__(self, *args, **kwargs):
        fq_ring_init(&self.ring)
        fq_cond_init(&self.c_not_empty)
        fq_cond_init(&self.c_not_full)
        fq_cond_init(&self.c_tasks_done)
        self.kind = KIND_FIFO

    def __dealloc__(self):
        fq_ring_free(&self.ring)
        fq_cond_fini(&self.c_not_empty)
        fq_cond_fini(&self.c_not_full)
        fq_cond_fini(&self.c_tasks_done)
        if self.heap_lock != NULL:
            PyThread_free_lock(self.heap_lock)

    def __init__(self, maxsize=0):
        self.maxsize = maxsize
        cls = type(self)
        self._hooked = cls is not Queue and cls is not LifoQueue and cls is not PriorityQueue \
            and _overrides_hooks(cls)
        if self._hooked:
            self._mutex = threading.Lock()
            self._not_empty = threading.Condition(self._mutex)
            self._not_full = threading.Condition(self._mutex)
            self._all_tasks_done = threading.Condition(self._mutex)
        self._init(maxsize)

    # ---- attributes of queue.Queue ----

    @property
    def maxsize(self):
        return self._maxsize

    @maxsize.setter
    def maxsize(self, value):
        self._maxsize = value
        self._signal(1)  # a larger maxsize may let blocked putters in

    @property
    def unfinished_tasks(self):
        return self._unfinished

    @unfinished_tasks.setter
    def unfinished_tasks(self, Py_ssize_t value):
        self._unfinished = value
        if value <= 0:
            self._signal(2)

    @property
    def is_shutdown(self):
        return self._shutdown

    @is_shutdown.setter
    def is_shutdown(self, bint value):
        self._shutdown = value

    @property
    def mutex(self):
        """A threading.Lock usable in `with`. On the C fast path (no hook overridden) holding it
        does not block put/get: the C core does not need it."""
        if self._mutex is None:
            self._mutex = threading.Lock()
        return self._mutex

    @property
    def not_empty(self):
        if self._not_empty is None:
            self._not_empty = _ConditionView(self, 0)
        return self._not_empty

    @property
    def not_full(self):
        if self._not_full is None:
            self._not_full = _ConditionView(self, 1)
        return self._not_full

    @property
    def all_tasks_done(self):
        if self._all_tasks_done is None:
            self._all_tasks_done = _ConditionView(self, 2)
        return self._all_tasks_done

    @property
    def queue(self):
        """The items: a live view (len, iteration, indexing, clear()), or whatever an
        overridden _init stored here."""
        if self._queue_attr is None:
            self._queue_attr = _QueueView(self)
        return self._queue_attr

    @queue.setter
    def queue(self, value):
        self._queue_attr = value

    # ---- the C store: the hooks of queue.Queue, usable by subclasses ----

    cdef int _push(self, item) except -1:
        if self.kind == KIND_HEAP:
            self._heap_enter()
            try:
                fq_heap_push(&self.ring, item)
            finally:
                self._heap_exit()
        else:
            fq_ring_push(&self.ring, item)
        return 0

    cdef object _pop(self):
        if self.kind == KIND_FIFO:
            return fq_ring_pop_front(&self.ring)
        if self.kind == KIND_LIFO:
            return fq_ring_pop_back(&self.ring)
        self._heap_enter()
        try:
            return fq_heap_pop(&self.ring)
        finally:
            self._heap_exit()

    cdef int _heap_enter(self) except -1:
        # Comparisons run Python code, which may switch threads: keep other threads out of the
        # heap until this operation is done, and refuse re-entry from a comparison itself.
        cdef int ok
        if self.heap_lock == NULL:
            self.heap_lock = PyThread_allocate_lock()
            if self.heap_lock == NULL:
                raise MemoryError
        if not PyThread_acquire_lock(self.heap_lock, NOWAIT_LOCK):
            if self.heap_owner == PyThread_get_thread_ident():
                raise RuntimeError("PriorityQueue used from inside one of its own comparisons")
            with nogil:
                ok = PyThread_acquire_lock(self.heap_lock, WAIT_LOCK)
        self.heap_owner = PyThread_get_thread_ident()
        return 0

    cdef void _heap_exit(self):
        self.heap_owner = 0
        PyThread_release_lock(self.heap_lock)

    cdef list _snapshot(self):
        cdef Py_ssize_t i
        return [<object>fq_ring_slot(&self.ring, i)[0] for i in range(self.ring.count)]

    cdef _clear(self):
        if self.kind == KIND_HEAP:
            self._heap_enter()
            try:
                fq_ring_clear(&self.ring)
            finally:
                self._heap_exit()
        else:
            fq_ring_clear(&self.ring)
        self._signal(1)

    cdef _signal(self, int which):
        if which == 0:
            fq_cond_signal(&self.c_not_empty)
        elif which == 1:
            fq_cond_signal(&self.c_not_full)
        else:
            fq_cond_signal(&self.c_tasks_done)

    # With a hook overridden, the object is queue.Queue exactly: the base hooks are queue.py's,
    # on a real deque (or list) in self.queue, so a subclass extending them sees what it expects.

    def _init(self, maxsize):
        if self._hooked:
            _PY_BASES[self.kind]._init(self, maxsize)

    def _qsize(self):
        if self._hooked:
            return _PY_BASES[self.kind]._qsize(self)
        return self.ring.count

    def _put(self, item):
        if self._hooked:
            return _PY_BASES[self.kind]._put(self, item)
        self._push(item)

    def _get(self):
        if self._hooked:
            return _PY_BASES[self.kind]._get(self)
        if self.ring.count == 0:
            raise IndexError("get from an empty queue")
        return self._pop()

    # ---- waiting ----

    cdef int _wait_not_empty(self, object block, object timeout) except -1:
        """Return once an item is there; raise Empty, ShutDown, ValueError or KeyboardInterrupt."""
        cdef fq_time_t deadline = _deadline(block, timeout)
        if not block:
            raise Empty
        while self.ring.count == 0:
            if self._shutdown:
                fq_cond_signal(&self.c_not_empty)  # pass the wake on to the next getter
                raise ShutDown
            if fq_cond_wait(&self.c_not_empty, deadline) == 0 and self.ring.count == 0:
                raise Empty
        return 0

    cdef int _wait_not_full(self, object block, fq_time_t deadline) except -1:
        if not block:
            raise Full
        while self.ring.count >= self._maxsize:
            if fq_cond_wait(&self.c_not_full, deadline) == 0 and self.ring.count >= self._maxsize:
                raise Full
            if self._shutdown:
                fq_cond_signal(&self.c_not_full)
                raise ShutDown
        return 0

    cdef inline void _after_get(self):
        if self._maxsize > 0:
            fq_cond_signal(&self.c_not_full)
        if self.ring.count > 0 or self._shutdown:
            # pass the wake on: more items wait, or a shutdown's wake was absorbed by ours
            fq_cond_signal(&self.c_not_empty)

    # ---- the public methods ----

    def put(self, item, block=True, timeout=None):
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
        if self._hooked:
            return _pyq.Queue.put(self, item, block, timeout)
        if self._shutdown:
            raise ShutDown
        if self._maxsize > 0:
            deadline = _deadline(block, timeout)
            if self.ring.count >= self._maxsize:
                self._wait_not_full(block, deadline)
        self._push(item)
        self._unfinished += 1
        fq_cond_signal(&self.c_not_empty)
        if self._maxsize > 0 and self.ring.count < self._maxsize:
            fq_cond_signal(&self.c_not_full)  # pass on a wake this put did not need all of

    def get(self, block=True, timeout=None):
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
        if self._hooked:
            return _pyq.Queue.get(self, block, timeout)
        if self.ring.count == 0:
            if self._shutdown:
                raise ShutDown
            self._wait_not_empty(block, timeout)
        elif timeout is not None:
            _deadline(block, timeout)
        item = self._pop()
        self._after_get()
        return item

    def put_nowait(self, item):
        """Put an item into the queue without blocking.

        Only enqueue the item if a free slot is immediately available.
        Otherwise raise the Full exception.
        """
        return self.put(item, False)

    def get_nowait(self):
        """Remove and return an item from the queue without blocking.

        Only get an item if one is immediately available. Otherwise
        raise the Empty exception.
        """
        return self.get(False)

    def put_many(self, items, block=True, timeout=None):
        """Put every item of `items`, in order (fastq extra).

        Blocks as put() does while the queue is full. If it times out (or, with block false,
        finds no room), it raises Full after inserting a prefix; the exception's `inserted`
        attribute says how many went in. Raises ShutDown (also with `inserted`) if the queue
        is or gets shut down.
        """
        if self._hooked:
            return _pyq.Queue.put_many(self, items, block, timeout)
        cdef list batch = list(items)  # a failing iterable raises before anything is queued
        cdef fq_time_t deadline = _deadline(block, timeout)
        cdef Py_ssize_t n = len(batch), done = 0, room
        while done < n:
            if self._shutdown:
                raise _pyq._with_inserted(ShutDown(), done)
            room = n - done
            if self._maxsize > 0:
                room = min(room, self._maxsize - self.ring.count)
                if room <= 0:
                    try:
                        self._wait_not_full(block, deadline)
                    except (Full, ShutDown) as exc:
                        raise _pyq._with_inserted(exc, done) from None
                    continue
            try:
                while room > 0:
                    self._push(batch[done])
                    self._unfinished += 1
                    done += 1
                    room -= 1
            finally:  # a failing comparison must not strand getters waiting for the prefix
                fq_cond_signal(&self.c_not_empty)

    def get_many(self, max_items, block=True, timeout=None):
        """Remove and return a list of up to `max_items` items (fastq extra).

        Waits, as get() does, only for the first item; then takes what is there.
        """
        if self._hooked:
            return _pyq.Queue.get_many(self, max_items, block, timeout)
        cdef Py_ssize_t n = _pyq._max_items(max_items), i
        if self.ring.count == 0:
            if self._shutdown:
                raise ShutDown
            self._wait_not_empty(block, timeout)
        elif timeout is not None:
            _deadline(block, timeout)
        if n > self.ring.count:
            n = self.ring.count
        cdef list out = []
        for i in range(n):
            out.append(self._pop())
        self._after_get()
        return out

    def task_done(self):
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
        if self._hooked:
            return _pyq.Queue.task_done(self)
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0:
            fq_cond_signal(&self.c_tasks_done)

    def join(self):
        """Blocks until all items in the Queue have been gotten and processed.

        The count of unfinished tasks goes up whenever an item is added to the
        queue. The count goes down whenever a consumer thread calls task_done()
        to indicate the item was retrieved and all work on it is complete.

        When the count of unfinished tasks drops to zero, join() unblocks.
        """
        if self._hooked:
            return _pyq.Queue.join(self)
        while self._unfinished > 0:
            fq_cond_wait(&self.c_tasks_done, FQ_NO_DEADLINE)
        fq_cond_signal(&self.c_tasks_done)  # the other joiners see it too

    def qsize(self):
        """Return the approximate size of the queue (not reliable!)."""
        if self._hooked:
            return _pyq.Queue.qsize(self)
        return self.ring.count

    def empty(self):
        """Return True if the queue is empty, False otherwise (not reliable!)."""
        if self._hooked:
            return _pyq.Queue.empty(self)
        return self.ring.count == 0

    def full(self):
        """Return True if the queue is full, False otherwise (not reliable!)."""
        if self._hooked:
            return _pyq.Queue.full(self)
        return 0 < self._maxsize <= self.ring.count

    def shutdown(self, immediate=False):
        """Shut-down the queue, making queue gets and puts raise ShutDown.

        By default, gets will only raise once the queue is empty. Set
        'immediate' to True to make gets raise immediately instead.

        All blocked callers of put() and get() will be unblocked. If
        'immediate', a task is marked as done for each item remaining in
        the queue, which may unblock callers of join().
        """
        if self._hooked:
            return _pyq.Queue.shutdown(self, immediate)
        self._shutdown = True
        if immediate:
            drained = self.ring.count
            self._unfinished = max(0, self._unfinished - drained)
            self._clear()
            fq_cond_signal(&self.c_tasks_done)
        fq_cond_signal(&self.c_not_empty)
        fq_cond_signal(&self.c_not_full)

    # ---- asyncio (fastq/_aio.py) ----

    def _async_watch(self, int which, int fd, int delta):
        """Register (delta +1) or unregister (-1) an event loop's fd, written to on every signal
        of condition `which` (0: not empty, 1: not full)."""
        if self._hooked:
            _pyq._watch(self._not_full if which else self._not_empty, "notify", fd, delta)
        else:
            fq_cond_watch(&self.c_not_full if which else &self.c_not_empty, fd, delta)

    cdef inline bint _plain(self):
        # the fast paths only for fastq's own classes: a subclass may override get/put
        return type(self) is Queue or type(self) is LifoQueue or type(self) is PriorityQueue

    cdef object _fast_get(self):
        if self.ring.count == 0 or not self._plain():
            return _NOTHING
        item = self._pop()
        self._after_get()
        return item

    cdef object _fast_put(self, item):
        if self._shutdown or not self._plain() or (self._maxsize > 0 and self.ring.count >= self._maxsize):
            return _NOTHING
        self._push(item)
        self._unfinished += 1
        fq_cond_signal(&self.c_not_empty)
        return None

    async def async_get(self, timeout=None):
        """Remove and return an item, awaiting one at most `timeout` seconds (fastq extra).

        Raises ShutDown as get() does, and on a timeout an exception that is both Empty and
        TimeoutError. A cancelled call took nothing."""
        if timeout is None or timeout >= 0:  # (a negative one raises on the slow path)
            item = self._fast_get()
            if item is not _NOTHING:
                return item
        return await _aio().get(self, timeout)

    async def async_put(self, item, timeout=None):
        """Put an item, awaiting a free slot at most `timeout` seconds (fastq extra).

        Raises ShutDown as put() does, and on a timeout an exception that is both Full and
        TimeoutError. The item goes in after the last await: a cancelled call inserted nothing."""
        if timeout is None or timeout >= 0:
            if self._fast_put(item) is not _NOTHING:
                return
        await _aio().put(self, item, timeout)

    def async_get_many(self, max_items, timeout=None):
        """Remove and return up to `max_items` items, awaiting only the first (fastq extra)."""
        return _aio().get_many(self, max_items, timeout)

    def __aiter__(self):
        """Items until the queue is shut down and drained (fastq extra)."""
        return _aio().iterate(self)

    @classmethod
    def __class_getitem__(cls, item):
        return types.GenericAlias(cls, item)


@cython.auto_pickle(False)  # refused with Queue's own message, not Cython's
cdef class LifoQueue(Queue):
    """Variant of Queue that retrieves most recently added entries first."""

    def __cinit__(self, *args, **kwargs):
        self.kind = KIND_LIFO


@cython.auto_pickle(False)
cdef class PriorityQueue(Queue):
    """Variant of Queue that retrieves open entries in priority order (lowest first).

    Entries are typically tuples of the form:  (priority number, data).
    """

    def __cinit__(self, *args, **kwargs):
        self.kind = KIND_HEAP


@cython.auto_pickle(False)
cdef class SimpleQueue:
    """Simple, unbounded, reentrant FIFO queue (drop-in for queue.SimpleQueue), with
    put_many() and get_many()."""
    cdef fq_ring ring
    cdef fq_cond c_not_empty
    cdef object _unused  # an object field makes Cython give the type GC support (see the end)
    cdef object __weakref__

    def __cinit__(self):
        fq_ring_init(&self.ring)
        fq_cond_init(&self.c_not_empty)

    def __dealloc__(self):
        fq_ring_free(&self.ring)
        fq_cond_fini(&self.c_not_empty)

    def put(self, item, block=True, timeout=None):
        """Put the item on the queue.

        The optional 'block' and 'timeout' arguments are ignored, as this method
        never blocks.  They are provided for compatibility with the Queue class.
        """
        fq_ring_push(&self.ring, item)
        fq_cond_signal(&self.c_not_empty)

    cdef int _wait(self, object block, object timeout) except -1:
        cdef fq_time_t deadline = _deadline(block, timeout)
        if self.ring.count == 0:
            if not block:
                raise Empty
            while self.ring.count == 0:
                if fq_cond_wait(&self.c_not_empty, deadline) == 0 and self.ring.count == 0:
                    raise Empty
        return 0

    def get(self, block=True, timeout=None):
        """Remove and return an item from the queue.

        If optional args 'block' is true and 'timeout' is None (the default),
        block if necessary until an item is available. If 'timeout' is
        a non-negative number, it blocks at most 'timeout' seconds and raises
        the Empty exception if no item was available within that time.
        Otherwise ('block' is false), return an item if one is immediately
        available, else raise the Empty exception ('timeout' is ignored
        in that case).
        """
        if self.ring.count == 0 or timeout is not None:
            self._wait(block, timeout)
        item = fq_ring_pop_front(&self.ring)
        if self.ring.count > 0:
            fq_cond_signal(&self.c_not_empty)
        return item

    def put_nowait(self, item):
        """Put an item into the queue without blocking.

        This is exactly equivalent to `put(item, block=False)` and is only provided
        for compatibility with the Queue class.
        """
        fq_ring_push(&self.ring, item)
        fq_cond_signal(&self.c_not_empty)

    def get_nowait(self):
        """Remove and return an item from the queue without blocking.

        Only get an item if one is immediately available. Otherwise
        raise the Empty exception.
        """
        return self.get(False)

    def put_many(self, items, block=True, timeout=None):
        """Put every item of `items`, in order; never blocks (fastq extra)."""
        cdef list batch = list(items)
        for item in batch:
            fq_ring_push(&self.ring, item)
        fq_cond_signal(&self.c_not_empty)

    def get_many(self, max_items, block=True, timeout=None):
        """Remove and return a list of up to `max_items` items, waiting only for the first (fastq extra)."""
        cdef Py_ssize_t n = _pyq._max_items(max_items), i
        self._wait(block, timeout)
        if n > self.ring.count:
            n = self.ring.count
        cdef list out = []
        for i in range(n):
            out.append(fq_ring_pop_front(&self.ring))
        if self.ring.count > 0:
            fq_cond_signal(&self.c_not_empty)
        return out

    def empty(self):
        """Return True if the queue is empty, False otherwise (not reliable!)."""
        return self.ring.count == 0

    def qsize(self):
        """Return the approximate size of the queue (not reliable!)."""
        return self.ring.count

    # ---- asyncio (fastq/_aio.py) ----

    def _async_watch(self, int which, int fd, int delta):
        fq_cond_watch(&self.c_not_empty, fd, delta)

    cdef object _fast_get(self):
        if self.ring.count == 0 or type(self) is not SimpleQueue:
            return _NOTHING
        item = fq_ring_pop_front(&self.ring)
        if self.ring.count > 0:
            fq_cond_signal(&self.c_not_empty)
        return item

    async def async_get(self, timeout=None):
        """Remove and return an item, awaiting one at most `timeout` seconds (fastq extra)."""
        if timeout is None or timeout >= 0:
            item = self._fast_get()
            if item is not _NOTHING:
                return item
        return await _aio().get(self, timeout)

    async def async_put(self, item, timeout=None):
        """Put the item on the queue; never waits (fastq extra)."""
        fq_ring_push(&self.ring, item)
        fq_cond_signal(&self.c_not_empty)

    def async_get_many(self, max_items, timeout=None):
        """Remove and return up to `max_items` items, awaiting only the first (fastq extra)."""
        return _aio().get_many(self, max_items, timeout)

    def __aiter__(self):
        """Items, for ever (a SimpleQueue cannot be shut down) (fastq extra)."""
        return _aio().iterate(self)

    @classmethod
    def __class_getitem__(cls, item):
        return types.GenericAlias(cls, item)


# The garbage collector must see the queued items (a queue holding an object that holds the
# queue is a cycle). Cython generates tp_traverse/tp_clear for the declared object fields only,
# so wrap them to visit and clear the ring as well. Python subclasses call the slot at run time.
cdef traverseproc _queue_traverse_fields = (<PyTypeObject*>Queue).tp_traverse
cdef traverseproc _simple_traverse_fields = (<PyTypeObject*>SimpleQueue).tp_traverse
cdef inquiry _queue_clear_fields = (<PyTypeObject*>Queue).tp_clear
cdef inquiry _simple_clear_fields = (<PyTypeObject*>SimpleQueue).tp_clear

cdef int _visit_ring(fq_ring *r, visitproc visit, void *arg) noexcept:
    cdef Py_ssize_t i
    cdef int err
    for i in range(r.count):
        err = visit(fq_ring_slot(r, i)[0], arg)
        if err:
            return err
    return 0

cdef int _queue_traverse(PyObject *o, visitproc visit, void *arg) noexcept:
    cdef int err = _queue_traverse_fields(o, visit, arg)
    return err if err else _visit_ring(&(<Queue>o).ring, visit, arg)

cdef int _simple_traverse(PyObject *o, visitproc visit, void *arg) noexcept:
    cdef int err = _simple_traverse_fields(o, visit, arg)
    return err if err else _visit_ring(&(<SimpleQueue>o).ring, visit, arg)

cdef int _queue_clear(object o) except -1:
    fq_ring_clear(&(<Queue>o).ring)
    return _queue_clear_fields(o)

cdef int _simple_clear(object o) except -1:
    fq_ring_clear(&(<SimpleQueue>o).ring)
    return _simple_clear_fields(o)

for _t in (Queue, LifoQueue, PriorityQueue):
    (<PyTypeObject*>_t).tp_traverse = <traverseproc>_queue_traverse
    (<PyTypeObject*>_t).tp_clear = <inquiry>_queue_clear
(<PyTypeObject*>SimpleQueue).tp_traverse = <traverseproc>_simple_traverse
(<PyTypeObject*>SimpleQueue).tp_clear = <inquiry>_simple_clear
