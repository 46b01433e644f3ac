"""ParallelQueue and ParallelSingleTaskQueue: ordered parallel execution on a ReorderBuffer.

Written once, in the _ParallelQueue and _SingleTask mixins, whose `_ReorderBuffer`, `_Queue`
(thread backend) and `_ProcessQueue` (process backend) attributes name the cores: ParallelQueue here
sits on fastq's (the C ones where built), fastq.pure.parallel's on the pure ones.

How it works. `put(func, *args)` reserves the next packet id in a ReorderBuffer and hands (id, task)
to a backend; while the window is full, tasks wait in a FIFO backlog instead, which get() moves into
the ids it frees (so put never waits for a consumer, unless a maxsize says so); whatever runs the task
files its result under the id, and `get()` takes results out of the buffer in id order. A
non-callable put goes straight into the buffer (passthrough, in order). Every reserved id gets
filled: the task is serialized before its id is reserved, and if sending fails anyway the id is
filled with the error, which get() raises in order. map() sends the short tasks of a list or
range in groups, several items under one id (fastq/_chunk.py), so that they do not each pay a
message round trip.

Backends (only the transport differs):

- "process": worker processes fed through core ProcessQueues (fastq/_process_backend.py).
- "thread": a pool of threads reading a core Queue.
- any concurrent.futures.Executor: submit() + add_done_callback() files the result.
- a distributed.Client (dask): client.submit() + add_done_callback(). distributed is never imported
  here: a Client is recognised only if the caller has imported distributed already.
"""
from __future__ import annotations

import atexit
import functools
import importlib.util
import multiprocessing
import multiprocessing.util  # its atexit hook must be registered before ours, so ours runs first
import operator
import os
import sys
import threading
import warnings
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from time import monotonic
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from . import _chunk, _cpus, _forker
from ._aio_parallel import _AsyncResults
from ._chunk import _Chunk
from ._failure import _Failure, _unsent
from ._process_backend import _ProcessBackend, dumps_callable
from . import ProcessQueue, Queue, ReorderBuffer
from .errors import Closed, Empty, Full, ShutDown, WorkerDied

_T = TypeVar("_T")
if TYPE_CHECKING:  # Any where a constructor call does not say which (a PEP 696 default: no annotation needed)
    import typing_extensions

    _R = typing_extensions.TypeVar("_R", default=Any)
else:
    _R = TypeVar("_R")
_Self = TypeVar("_Self", bound="_ParallelQueue")

_THREAD_SLICE = 0.5  # seconds: how often an idle non-daemon thread checks the main thread

# A task as a backend sends it: (func, args, kwargs), from _chunk.call(); for the process backend, bytes.
_Task = Any


class _Backend(Protocol):
    """What ParallelQueue asks of a backend (thread, executor or dask here; process in _process_backend)."""

    prepared_bytes: int  # the last task's serialized size (0 where tasks are not serialized)

    def prepare(self, func: Callable[..., Any], args: tuple[Any, ...] | None, kwargs: Any) -> _Task: ...
    def submit(self, packet_id: int, task: _Task) -> None: ...
    def stop(self) -> None: ...
    def kill(self) -> None: ...
    def join(self, timeout: float | None = None) -> None: ...
    def is_alive(self) -> bool: ...


def _cpu_count() -> int:
    """The CPUs this process may use: its affinity, capped by its cgroup's CPU quota (fastq/_cpus.py)."""
    return _cpus.cpu_count()


def default_buffer_size(cpus: int | None = None) -> int:
    """10 x the CPU count rounded up to a power of two."""
    n = 10 * (cpus or _cpu_count())
    return 1 << (n - 1).bit_length()


# ---------------------------------------------------------------------------------------------
# in-process and external backends


class _ThreadBackend:
    """A pool of threads reading a core Queue of (id, (func, args, kwargs)); one None per thread
    stops them (sentinels rather than Queue.shutdown(), which must wake every blocked getter)."""

    prepared_bytes = 0  # tasks are not serialized here

    def __init__(self, buffer: Any, Queue: Callable[[], Any], count: int, daemon: bool,
                 func: Callable[..., Any] | None = None) -> None:
        self.buffer = buffer
        self.tasks = Queue()
        self.func = func
        self.daemon = daemon
        self.stopped = False
        self.killed = False
        self.stop_lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, name=f"fastq-parallel-thread-{i}", daemon=daemon)
                        for i in range(count)]
        for thread in self.threads:
            thread.start()

    def prepare(self, func: Callable[..., Any], args: tuple[Any, ...] | None, kwargs: Any) -> _Task:
        return _chunk.call(func if self.func is None else self.func, args, kwargs, local=True)

    def submit(self, packet_id: int, task: _Task) -> None:
        self.tasks.put((packet_id, task))

    def _run(self) -> None:
        get = self.tasks.get
        put = self.buffer.put
        timeout = None if self.daemon else _THREAD_SLICE
        while True:
            try:
                task = get(timeout=timeout)
            except Empty:  # non-daemon threads: once the main thread has finished, finish too
                if not threading.main_thread().is_alive():
                    self.stop()
                continue
            if task is None:
                return
            if self.killed:  # nobody will get() the result
                continue
            packet_id, (func, args, kwargs) = task
            try:
                result: Any = func(*args, **kwargs)
            except BaseException as exc:
                result = _Failure.local(exc)
            put(packet_id, result)
            del task, result, func, args, kwargs

    def stop(self) -> None:
        with self.stop_lock:
            if self.stopped:
                return
            self.stopped = True
        self.tasks.put_many([None] * len(self.threads))

    def kill(self) -> None:
        self.killed = True
        self.stop()

    def join(self, timeout: float | None = None) -> None:
        _join_all(self.threads, timeout)

    def is_alive(self) -> bool:
        return any(t.is_alive() for t in self.threads)


def _join_all(threads: list[threading.Thread], timeout: float | None) -> None:
    deadline = None if timeout is None else monotonic() + timeout
    for thread in threads:
        thread.join(None if deadline is None else max(0.0, deadline - monotonic()))


class _FutureBackend:
    """Tasks run by someone else's executor (concurrent.futures) or dask client; a done callback
    files each result. Those pools are the caller's: stop() does not shut them down; join() waits
    for this queue's own tasks."""

    prepared_bytes = 0  # whatever the executor serializes, it does so out of sight

    def __init__(self, buffer: Any, submit: Callable[..., Any], func: Callable[..., Any] | None = None,
                 dask: bool = False) -> None:
        self.buffer = buffer
        self._submit = submit
        self.func = func
        self.dask = dask
        self.outstanding = 0
        self.stopped = False
        self.idle = threading.Condition(threading.Lock())
        self.futures: dict[int, Any] = {}  # dask releases a task whose future is garbage collected: keep them

    def prepare(self, func: Callable[..., Any], args: tuple[Any, ...] | None, kwargs: Any) -> _Task:
        return _chunk.call(func if self.func is None else self.func, args, kwargs)

    def submit(self, packet_id: int, task: _Task) -> None:
        func, args, kwargs = task
        with self.idle:
            self.outstanding += 1
        try:
            if self.dask:
                if kwargs.keys() & _DASK_KEYWORDS:
                    future = self._submit(_call, func, args, kwargs, pure=False)
                else:
                    future = self._submit(func, *args, pure=False, **kwargs)
                self.futures[packet_id] = future
            else:
                future = self._submit(func, *args, **kwargs)
        except BaseException:
            self._done()
            raise
        future.add_done_callback(functools.partial(self._file, packet_id))

    def _file(self, packet_id: int, future: Any) -> None:
        try:
            try:
                result: Any = future.result()
            except BaseException as exc:
                tb = None
                if self.dask:
                    try:
                        tb = future.traceback()
                    except BaseException:
                        tb = None
                result = _died_or_failed(exc, tb)
            self.buffer.put(packet_id, result)
        finally:
            self.futures.pop(packet_id, None)
            self._done()

    def _done(self) -> None:
        with self.idle:
            self.outstanding -= 1
            if not self.outstanding:
                self.idle.notify_all()

    def stop(self) -> None:
        with self.idle:
            self.stopped = True
            self.idle.notify_all()

    kill = stop

    def join(self, timeout: float | None = None) -> None:
        with self.idle:
            self.idle.wait_for(lambda: self.stopped and not self.outstanding, timeout)

    def is_alive(self) -> bool:
        with self.idle:
            return not (self.stopped and not self.outstanding)


_DASK_KEYWORDS = frozenset(("key", "workers", "resources", "retries", "priority", "fifo_timeout",
                            "allow_other_workers", "actor", "actors", "pure"))


def _call(func: Callable[..., _R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> _R:
    return func(*args, **kwargs)


def _died_or_failed(exc: BaseException, tb: TracebackType | None = None) -> _Failure:
    from concurrent.futures.process import BrokenProcessPool

    if isinstance(exc, BrokenProcessPool):
        return _Failure(WorkerDied(f"the executor's worker process died: {exc}"), cause=exc)
    return _Failure.local(exc, tb)


def _is_dask_client(obj: object) -> bool:
    distributed = sys.modules.get("distributed")
    client = getattr(distributed, "Client", None)
    return client is not None and isinstance(obj, client)


class _MapEnd:
    """Passed through after map()'s last task; carries the feeder's exception, if any."""

    __slots__ = ("error",)

    def __init__(self) -> None:
        self.error: BaseException | None = None


# ---------------------------------------------------------------------------------------------
# interpreter exit: non-daemon pools are stopped (their tasks finish), daemon ones killed

_non_daemon_pools: weakref.WeakSet[_ParallelQueue] = weakref.WeakSet()


@atexit.register
def _stop_non_daemon_pools() -> None:
    pools = list(_non_daemon_pools)
    for pool in pools:
        try:
            pool.stop()
        except Exception:
            pass
    for pool in pools:  # multiprocessing waits for the workers it started; the forker's, here
        if getattr(pool._backend, "forker", None) is not None:
            pool._backend.join()


# ---------------------------------------------------------------------------------------------
# the public classes: the logic in mixins, composed with fastq's cores here and with the pure
# ones in fastq.pure.parallel


class _ParallelQueue(_AsyncResults):
    """Run tasks in parallel and get their results back in submission order.

    put(func, *args, **kwargs) runs func(*args, **kwargs) on a worker; get() returns the
    results in the order of the puts. A non-callable put on its own passes through to get()
    in its place in the order (a marker between batches, say). A task's exception surfaces at
    its get() as WorkerError (the worker's traceback in `.traceback`, the original exception
    as `__cause__` when it could be brought back); a worker process that dies holding a task
    surfaces there as WorkerDied, a replacement starts and the stream goes on.

    At most `buffer_size` tasks are running or held for reordering (the window); tasks put
    beyond it wait in line in this process, each as its pickled bytes (the process backend),
    and enter the window as get() takes results. So put() never waits and a program may put
    everything before it gets anything. maxsize > 0 bounds the tasks put and not yet taken
    by get(): put() then blocks while that many are pending (queue.Full on timeout).

    backend: "process" (the default), "thread", a concurrent.futures.Executor or a
    distributed.Client (those two are the caller's: stop() and join() do not shut them
    down, and worker_count does not apply). daemon: daemon worker processes/threads are
    killed when the interpreter exits; non-daemon ones are stopped then and finish their
    tasks (and non-daemon processes may start processes of their own). ctx: the process
    backend's multiprocessing context (default: the program's, else the platform's: fork on
    Linux before 3.14, where a single-threaded helper process forks the workers);
    lambdas and closures reach its workers through cloudpickle (the fastq-queue[cloudpickle]
    extra).

    stop() refuses further puts; workers finish what was put. Iteration yields results until
    the queue is stopped and drained; get() then raises Closed. join(timeout) waits for the
    workers. As a context manager, the exit stops and joins (so take the results beyond the
    window inside the block: they wait for get(); an exception leaving the block drops the
    tasks still waiting beyond the window, which never started). put() and get() may be
    called from any thread.
    """

    _single_task = False
    # the cores, named by each ParallelQueue class
    _ReorderBuffer: ClassVar[Callable[..., Any]]
    _Queue: ClassVar[Callable[..., Any]]
    _ProcessQueue: ClassVar[Callable[..., Any]]

    def __init__(self, worker_count: int | None = None, *, backend: Any = "process", buffer_size: int | None = None,
                 maxsize: int = 0, daemon: bool = True, ctx: Any = None, _start: int = 0) -> None:
        self._init(None, worker_count, backend, buffer_size, maxsize, daemon, ctx, _start)

    def _init(self, func: Callable[..., Any] | None, worker_count: int | None, backend: Any,
              buffer_size: int | None, maxsize: int, daemon: bool, ctx: Any, start: int) -> None:
        cpus = _cpu_count()
        if worker_count is None:
            worker_count = cpus
        worker_count = operator.index(worker_count)
        if worker_count < 1:
            raise ValueError(f"worker_count must be at least 1, not {worker_count}")
        if buffer_size is None:
            buffer_size = default_buffer_size(cpus)
        buffer_size = operator.index(buffer_size)
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be at least 1, not {buffer_size}")
        buffer_size = 1 << (buffer_size - 1).bit_length()  # the window is a power of two
        maxsize = operator.index(maxsize)
        if maxsize < 0:
            raise ValueError(f"maxsize must be 0 (unbounded) or more, not {maxsize}")
        if ctx is not None:
            if backend != "process":
                raise ValueError(f"ctx applies to the process backend only, not to {backend!r}")
            if not callable(getattr(ctx, "get_start_method", None)):
                raise TypeError(f"'ctx' must be a multiprocessing context (multiprocessing.get_context(...)), "
                                f"not {type(ctx).__name__}")
        self.worker_count = worker_count
        self.buffer_size = buffer_size
        self.maxsize = maxsize
        self._buffer: ReorderBuffer[Any] = self._ReorderBuffer(buffer_size, start=start)
        self._start = start
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # puts waiting for maxsize
        # Tasks beyond the window wait here, in order, as (is a task, prepared task or passthrough
        # item); get() moves them into the window as it frees ids.
        self._backlog: deque[tuple[bool, Any]] = deque()
        self._stopped = False
        self._stop_event = threading.Event()  # join(timeout) before stop() waits on it
        # stop() tells the backend to stop once every reserved id was handed over (sent,
        # passed through or filled): ids counted (mod 2**32) against the buffer's final next_id
        self._accounted = 0
        self._expected: int | None = None
        self._backend_stopped = False
        self._backend: _Backend
        if isinstance(backend, str):
            if backend == "process":
                self._backend = _ProcessBackend(  # type: ignore[no-untyped-call]
                    self._buffer, self._ProcessQueue, worker_count, daemon, func, _process_context(func, ctx))
            elif backend == "thread":
                self._backend = _ThreadBackend(self._buffer, self._Queue, worker_count, daemon, func)
            else:
                raise ValueError(f'backend must be "process", "thread", an Executor or a '
                                 f"distributed.Client, not {backend!r}")
        elif _is_dask_client(backend):
            self._backend = _FutureBackend(self._buffer, backend.submit, func, dask=True)
        elif callable(getattr(backend, "submit", None)):
            self._backend = _FutureBackend(self._buffer, backend.submit, func)
        else:
            raise ValueError(f'backend must be "process", "thread", an Executor or a '
                             f"distributed.Client, not {backend!r}")
        self.backend = backend
        self.daemon = daemon
        self._finalizer = weakref.finalize(self, self._backend.kill)
        if not daemon:
            self._finalizer.atexit = False
            _non_daemon_pools.add(self)

    # -- put ------------------------------------------------------------------------------

    def _enter(self, is_task: bool, obj: Any, block: bool, timeout: float | None) -> None:
        """Give a prepared task (or a passthrough item) the next id in the window, or queue it
        behind the window; with a maxsize, wait for room first (queue.Full on timeout)."""
        if block and timeout is not None and timeout < 0:
            raise ValueError("'timeout' must be a non-negative number")
        with self._lock:
            if self.maxsize:
                deadline = None if timeout is None else monotonic() + timeout
                while not self._stopped and self._buffer.pending + len(self._backlog) >= self.maxsize:
                    remaining = None if deadline is None else deadline - monotonic()
                    if not block or (remaining is not None and remaining <= 0):
                        raise Full
                    self._room.wait(remaining)
            if self._stopped:
                raise Closed("put() on a stopped ParallelQueue")
            packet_id = None
            if not self._backlog:
                try:
                    packet_id = self._buffer.reserve(False)
                except Full:
                    pass
            if packet_id is None:  # the window is full: wait in line, get() brings it in
                self._backlog.append((is_task, obj))
                return
        self._hand_over(packet_id, is_task, obj)

    def _hand_over(self, packet_id: int, is_task: bool, obj: Any) -> None:
        try:
            if is_task:
                self._backend.submit(packet_id, obj)
            else:
                self._buffer.put(packet_id, obj)
        except BaseException as exc:  # every reserved id gets filled
            if is_task:
                try:
                    self._buffer.put(packet_id, _unsent(packet_id, exc))
                except ValueError:
                    pass
            raise
        finally:
            self._account()

    def _admit(self) -> None:
        """After get() took a result: move waiting tasks into the ids it freed, and let a put
        waiting for maxsize go on. A task that cannot be sent here gets its error in place."""
        with self._lock:
            if self.maxsize:
                self._room.notify()
            if not self._backlog:
                return
            admitted = []
            while self._backlog:
                try:
                    packet_id = self._buffer.reserve(False)
                except Full:
                    break
                admitted.append((packet_id, *self._backlog.popleft()))
            close = self._stopped and not self._backlog
        for packet_id, is_task, obj in admitted:
            try:
                self._hand_over(packet_id, is_task, obj)
            except Exception:  # filed under its id: its get() raises it
                pass
        if close:
            self._close_window()

    def _account(self) -> None:
        """Count one reserved id as handed over; after stop(), the last one stops the backend."""
        with self._lock:
            self._accounted = (self._accounted + 1) & 0xFFFFFFFF
            last = self._accounted == self._expected and not self._backend_stopped
            if last:
                self._backend_stopped = True
        if last:
            self._backend.stop()

    def put(self, func: Any, *args: Any, block: bool = True, timeout: float | None = None, **kwargs: Any) -> None:
        """Run func(*args, **kwargs) on a worker; its result comes out of get() in the order
        of the puts. A non-callable `func` on its own passes through to get() in order.
        Never waits, unless the queue has a maxsize: then blocks while `maxsize` tasks are
        pending (queue.Full after `timeout` seconds, or at once with block false). Raises
        Closed after stop()."""
        if not callable(func):
            if args or kwargs:
                raise ValueError(f"put() of a non-callable {type(func).__name__!r} with arguments: "
                                 "only a callable takes arguments (a non-callable alone passes through)")
            self._passthrough(func, block, timeout)
            return
        self._submit(func, args, kwargs, block, timeout)

    def _passthrough(self, item: object, block: bool, timeout: float | None) -> None:
        self._enter(False, item, block, timeout)

    def _submit(self, func: Callable[..., Any], args: tuple[Any, ...] | None, kwargs: Any, block: bool,
                timeout: float | None) -> None:
        task = self._backend.prepare(func, args, kwargs)  # serialized before its id exists
        self._enter(True, task, block, timeout)

    # -- get ------------------------------------------------------------------------------

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Return the next result in submission order, waiting for it if necessary (queue.Empty
        after `timeout` seconds, or at once with block false). A task's exception raises
        WorkerError; a worker that died holding the task raises WorkerDied. Once stopped and
        drained, raises Closed."""
        try:
            item = self._take(block, timeout)
        except ShutDown:
            raise Closed("get() on a stopped, drained ParallelQueue") from None
        if type(item) is _Failure:
            item.raise_()
        return item

    def __iter__(self) -> Iterator[Any]:
        """Yield results until the queue is stopped and drained (a task's exception raises
        out of the loop, which ends it)."""
        while True:
            try:
                item = self._take(True, None)
            except ShutDown:
                return
            if type(item) is _Failure:
                item.raise_()
            yield item

    def _take(self, block: bool, timeout: float | None) -> Any:
        item = self._buffer.get(block, timeout)
        self._admit()
        return item

    # -- map ------------------------------------------------------------------------------

    def map(self, func: Callable[[_T], _R], iterable: Iterable[_T], chunksize: int | None = None) -> Iterator[_R]:
        """Yield func(item) for each item, in order, while a thread feeds the puts (so the
        window never stalls the caller). The queue must have nothing pending (map takes the
        stream for itself); it is not stopped afterwards. A task's exception raises at its
        place; an exception from the iterable or from a put raises after the results before
        it. Leaving the loop early waits for the tasks already put and drops their results.

        chunksize: items sent to a worker as one task. None (the default) groups short tasks
        automatically (about 5 ms of work per group, at most about 1 MiB of pickled items
        on the process backend; the first group is one item, whose run time sizes the next;
        smaller towards the end where that saves a worker some idle time) when the iterable knows its length
        (a list, a range; one that may block between items, like a generator or a file, is
        sent an item at a time, so no item waits for the next); 1 never groups. A worker that
        dies fails its whole group (WorkerDied, at the group's first item)."""
        if not callable(func):
            raise TypeError(f"map() needs a callable, not {type(func).__name__!r}")
        return self._map(func, iterable, chunksize)

    def _map(self, func: Callable[[_T], _R], iterable: Iterable[_T], chunksize: int | None) -> Iterator[_R]:
        if chunksize is not None:
            chunksize = operator.index(chunksize)
            if chunksize < 1:
                raise ValueError(f"chunksize must be at least 1, not {chunksize}")
        if self.qsize():
            raise ValueError("map() on a ParallelQueue with results pending: get() them first")
        end = _MapEnd()  # passed through after the last task: the consumer needs no counting
        cancel = threading.Event()
        # items per group, and the fewest worth shrinking a group's tail to: set by the consumer
        # from the groups' run times
        size = [chunksize or 1, 1]
        # Automatic groups start with one item, sent alone: the feeder waits a few groups' worth
        # of time at most for its run time, rather than filling the window with tiny groups
        # first (slow items lose that much, once: those workers would idle only that long).
        probed = threading.Event()
        if chunksize is not None:
            probed.set()
        # With the window full the feeder sleeps until a quarter of it is free, not until the
        # first slot is: one wake per several tasks rather than one per result (each costs
        # the parent CPU time that the workers could use).
        buffer = self._buffer
        window = buffer.window
        low = max(1, window // 4)
        room = threading.Event()
        waiting = [False]

        def wake_feeder() -> None:  # the consumer's side, before each get()
            if waiting[0] and window - buffer.pending >= low:
                room.set()

        def send(args: tuple[Any, ...] | None, kwargs: Any) -> bool:
            """Put one task (or group), waiting for room; False once cancelled."""
            while True:
                if cancel.is_set():
                    return False
                if buffer.pending >= window:
                    room.clear()
                    waiting[0] = True
                    if buffer.pending >= window:
                        room.wait(0.1)
                    waiting[0] = False
                    continue
                try:
                    self._submit(func, args, kwargs, True, 0.1)
                    return True
                except Full:
                    continue

        def feed() -> None:
            try:
                iterator = iter(iterable)
                grouped = chunksize != 1 and (chunksize is not None or operator.length_hint(iterator) > 0)
                spread = 4 * self.worker_count
                cap = _chunk.MAX_ITEMS  # by the bytes the last group serialized to
                while True:
                    n = size[0] if grouped else 1
                    if n > 1 and chunksize is None:  # smaller groups towards the end: no worker idles long
                        n = min(n, cap, max(size[1], operator.length_hint(iterator) // spread))
                    items: list[_T] = []
                    error: BaseException | None = None
                    try:
                        for item in iterator:
                            items.append(item)
                            if len(items) >= n:
                                break
                    except BaseException as exc:  # the items taken before it still run
                        error = exc
                    if items and not send(*((None, items) if grouped else ((items[0],), {}))):
                        return
                    if grouped and not probed.is_set():
                        probed.wait(4 * _chunk.TARGET)
                    if grouped:
                        cap = _chunk.byte_cap(len(items), self._backend.prepared_bytes)
                    if error is not None:
                        raise error
                    if len(items) < n:
                        return
            except BaseException as exc:
                end.error = exc
            finally:
                try:
                    self._passthrough(end, True, None)
                except BaseException as exc:  # stopped under us: the consumer sees Closed
                    if end.error is None:
                        end.error = exc

        feeder = threading.Thread(target=feed, name="fastq-parallel-map-feeder", daemon=True)
        feeder.start()
        return self._map_results(end, cancel, feeder, wake_feeder, room, size, chunksize is None, probed)

    def _map_results(self, end: _MapEnd, cancel: threading.Event, feeder: threading.Thread,
                     wake_feeder: Callable[[], None], room: threading.Event, size: list[int],
                     auto: bool, probed: threading.Event) -> Iterator[Any]:
        finished = False
        try:
            while True:
                wake_feeder()
                try:
                    item = self.get()
                except Closed:  # stopped before the end marker went in
                    finished = True
                    feeder.join()
                    if end.error is not None:
                        raise end.error from None
                    raise
                if type(item) is _Chunk:
                    if auto:  # the first group's time is taken at its word: nothing else is known yet
                        size[0] = _chunk.next_size(size[0] if probed.is_set() else _chunk.MAX_ITEMS, item)
                        size[1] = _chunk.tail_floor(item)
                        probed.set()
                    yield from item.results
                    if item.failure is not None:
                        item.failure.raise_()
                    continue
                if item is end:
                    finished = True
                    feeder.join()
                    if end.error is not None:
                        raise end.error
                    return
                yield item
        finally:
            if not finished:  # left early: stop feeding, take this map's own results out
                cancel.set()
                room.set()
                while True:
                    try:
                        if self._take(True, None) is end:
                            break
                    except ShutDown:
                        break
                feeder.join()

    # -- lifetime -------------------------------------------------------------------------

    def stop(self) -> None:
        """Refuse further puts; the workers finish every task already put, then exit.
        Results stay available to get() and iteration."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._room.notify_all()  # puts waiting for maxsize raise Closed
            backlog = bool(self._backlog)
        self._stop_event.set()
        if not backlog:  # else the get() that admits the last waiting task closes the window
            self._close_window()

    def _close_window(self) -> None:
        self._buffer.shutdown()
        with self._lock:  # no id can be reserved now: the count to wait for is final
            self._expected = (self._buffer.next_id - self._start) & 0xFFFFFFFF
            now = self._accounted == self._expected and not self._backend_stopped
            if now:
                self._backend_stopped = True
        if now:
            self._backend.stop()

    @property
    def stopped(self) -> bool:
        return self._stopped

    def join(self, timeout: float | None = None) -> None:
        """Wait until the workers have finished, which they do after stop() once every task
        put has run (tasks beyond the window enter it only as get() takes results). With a
        timeout, returns when it expires, stopped or not; is_alive() tells which. Without
        one, raises ValueError before stop(), since it could never return."""
        if timeout is None:
            if not self._stopped:
                raise ValueError("join() before stop(): the workers would never finish")
            self._backend.join()
            return
        deadline = monotonic() + timeout
        if self._stop_event.wait(timeout):
            self._backend.join(max(0.0, deadline - monotonic()))

    def is_alive(self) -> bool:
        """Whether any worker is still running (for an Executor or a Client: whether this
        queue's tasks or further puts may still come)."""
        return self._backend.is_alive()

    def qsize(self) -> int:
        """Tasks (and passthrough items) put and not yet taken by get(): ready, running, or
        waiting beyond the window."""
        with self._lock:
            return self._buffer.pending + len(self._backlog)

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            # Nobody will take the results: the tasks waiting beyond the window, which never
            # started, are dropped, else they would wait for get()s that never come.
            with self._lock:
                self._backlog.clear()
        self.stop()
        self.join()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running"
        return (f"<{type(self).__name__} {state} backend={self.backend!r} workers={self.worker_count} "
                f"buffer_size={self.buffer_size} maxsize={self.maxsize} pending={self.qsize()}>")


if TYPE_CHECKING:  # the mixin is checked against the class it is mixed into
    _SingleTaskBase = _ParallelQueue
else:
    _SingleTaskBase = object


class _SingleTask(Generic[_R], _SingleTaskBase):
    """A ParallelQueue with one function baked in: put(*args, **kwargs) runs func(*args,
    **kwargs). With the process backend func reaches workers that did not fork from this
    process by value where it does not pickle by reference (a lambda, a closure: the
    fastq-queue[cloudpickle] extra), and forked ones by inheritance."""

    _single_task = True

    def __init__(self, func: Callable[..., _R], worker_count: int | None = None, *, backend: Any = "process",
                 buffer_size: int | None = None, maxsize: int = 0, daemon: bool = True, ctx: Any = None,
                 _start: int = 0) -> None:
        if not callable(func):
            raise TypeError(f"ParallelSingleTaskQueue needs a callable, not {type(func).__name__!r}")
        self.func = func
        self._init(func, worker_count, backend, buffer_size, maxsize, daemon, ctx, _start)

    def put(self, *args: Any, block: bool = True, timeout: float | None = None, **kwargs: Any) -> None:
        """Run func(*args, **kwargs) on a worker; results come out of get() in order."""
        self._submit(self.func, args, kwargs, block, timeout)

    # map() takes no func here: the class departs from ParallelQueue's signature on purpose
    def map(self, iterable: Iterable[Any], chunksize: int | None = None) -> Iterator[_R]:  # type: ignore[override]
        """Yield func(item) for each item, in order (see ParallelQueue.map)."""
        return self._map(self.func, iterable, chunksize)


class ParallelQueue(_ParallelQueue):
    __doc__ = _ParallelQueue.__doc__
    _ReorderBuffer, _Queue, _ProcessQueue = ReorderBuffer, Queue, ProcessQueue


del _SingleTaskBase  # (a type checker's view only: not part of the module)


class ParallelSingleTaskQueue(_SingleTask[_R], ParallelQueue):
    __doc__ = _SingleTask.__doc__

    if TYPE_CHECKING:  # the results are func's
        def get(self, block: bool = True, timeout: float | None = None) -> _R: ...
        def __iter__(self) -> Iterator[_R]: ...


def _process_context(func: Callable[..., Any] | None, ctx: Any) -> Any:
    """The process backend's start method: the one asked for (ctx=), else the program's (set_start_method)
    or the platform's default: fork on Linux before Python 3.14, where programs without an
    `if __name__ == "__main__":` guard must keep working; forkserver from 3.14. Under fork a
    single-threaded helper (fastq/_forker.py) forks the workers. Where the process has none yet
    and already runs threads, forking it draws Python 3.12+'s DeprecationWarning: if the warning
    filters would show it (-W error::DeprecationWarning, say) and the function can travel,
    forkserver instead; else the (ignored) warning is about the program's own threads."""
    if ctx is not None:
        return ctx
    ctx = multiprocessing.get_context()
    if (ctx.get_start_method() == "fork" and sys.version_info >= (3, 12) and not _forker.running()
            and "forkserver" in multiprocessing.get_all_start_methods() and _forker.threaded() and _fork_warning_shows()
            and (_travels(func) if func is not None else importlib.util.find_spec("cloudpickle") is not None)):
        return multiprocessing.get_context("forkserver")
    return ctx


def _fork_warning_shows() -> bool:
    """Whether the warning filters let through a DeprecationWarning raised where the forker forks."""
    with warnings.catch_warnings(record=True) as caught:  # the filters as they are, nothing printed
        try:
            warnings.warn_explicit("probe", DeprecationWarning, _forker.__file__, 1, module=_forker.__name__,
                                   registry={})
        except DeprecationWarning:
            return True
    return bool(caught)


def _travels(func: Callable[..., Any]) -> bool:
    """Whether func can be sent to a process that did not inherit it (pickle, or cloudpickle)."""
    try:
        dumps_callable(func, by_value=True)
    except Exception:
        return False
    return True


__all__ = ["ParallelQueue", "ParallelSingleTaskQueue"]
