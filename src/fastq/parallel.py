"""ParallelQueue and ParallelSingleTaskQueue: ordered parallel execution on a ReorderBuffer.

Written once over a core: `bind(ReorderBuffer, Queue, ProcessQueue)` returns the two classes for
that core, so fastq.ParallelQueue sits on the C cores and fastq.pure.ParallelQueue on the pure ones.

How it works. `put(func, *args)` reserves the next packet id in a ReorderBuffer (blocking while the
window is full: that is the back-pressure) and hands (id, task) to a backend; whatever runs the task
files its result under the id, and `get()` takes results out of the buffer in id order. A
non-callable put goes straight into the buffer (passthrough, in order). Every reserved id gets
filled: the task is serialized before its id is reserved, and if sending fails anyway the id is
filled with the error, which get() raises in order.

Backends (only the transport differs):

- "process": worker processes, each with its own small task queue (a core ProcessQueue) and one
  shared result queue. Each worker holds a few tasks at a time (its credit), dispatched to the
  least loaded; the rest wait in the parent, so the parent always knows which ids each worker
  holds. The credit is 2 for tasks of a millisecond or more and grows (up to the window divided
  by the workers) to about 2 ms of work for shorter ones, from the run times workers report: a
  trivial task then doesn't pay a round trip of its own. Workers send a result at once when
  200 us have passed since their last send, else with the rest of the batch they took. A collector thread takes
  results in batches (get_many), files them, sends waiting tasks in batches (put_many), and
  watches the workers' sentinels: when a worker dies it drains the result queue, fills every id
  the dead worker held (sent, or done and not yet sent back) with WorkerDied, and starts a
  replacement with a fresh task queue. It catches everything and hands failures to get(): it
  never dies silently. Workers exit when the parent dies (PR_SET_PDEATHSIG on Linux, plus a
  getppid() check on every idle slice), and ignore SIGINT (the parent decides).
  Start method: on Linux the workers are forked (fast to start, and functions defined in __main__
  or nested in a function reach ParallelSingleTaskQueue's workers by inheritance); elsewhere the
  platform's default (spawn: a single-task function must then pickle). The collector thread forks
  them all, the first ones and the replacements, because PR_SET_PDEATHSIG fires when the *thread*
  that forked exits, and the collector lives as long as the workers do. (Python 3.12+ warns,
  with a DeprecationWarning hidden by default, about fork in a threaded process, as it does for
  multiprocessing.Pool, which also forks replacements from a thread.)
- "thread": a pool of threads reading a core Queue.
- any concurrent.futures.Executor: submit() + add_done_callback() files the result.
- a distributed.Client (dask): client.submit() + add_done_callback(). distributed is never imported
  here: a Client is recognised only if the caller has imported distributed already.
"""
import atexit
import functools
import itertools
import multiprocessing
import multiprocessing.connection
import multiprocessing.util  # its atexit hook must be registered before ours, so ours runs first
import os
import pickle
import signal
import sys
import threading
import traceback
import types
import weakref
from collections import deque
from time import monotonic, perf_counter

from .errors import Closed, Empty, Full, ShutDown, WorkerDied, WorkerError

_PROTOCOL = pickle.HIGHEST_PROTOCOL
_MIN_CREDIT = 2  # tasks in flight per worker process: one running, one waiting in its queue...
_QUEUED_WORK = 0.002  # ...or, for short tasks, about this many seconds of work queued per worker
_MAX_CREDIT = 64
_FLUSH_AFTER = 0.0002  # seconds: a worker sends results at once past this, else at its batch's end
_FUNCTION_CACHE = 256  # pickled functions remembered, each side
_PLAIN_FUNCTIONS = (types.FunctionType, types.BuiltinFunctionType)
_BATCH = 256  # results the collector takes per get_many
_SLICE = 0.1  # seconds: how often the collector looks at the workers' sentinels when idle
_PARENT_CHECK = 1.0  # seconds: how often an idle worker checks that its parent is alive
_THREAD_SLICE = 0.5  # seconds: how often an idle non-daemon thread checks the main thread


def _cpu_count():
    count = getattr(os, "process_cpu_count", None)
    if count is not None:
        return count() or 1
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:
        return os.cpu_count() or 1


def default_buffer_size(cpus=None):
    """10 x the CPU count rounded up to a power of two."""
    n = 10 * (cpus or _cpu_count())
    return 1 << (n - 1).bit_length()


# ---------------------------------------------------------------------------------------------
# failures filed in the buffer in place of a result


class _Failure:
    """What get() raises instead of returning: filed in the buffer under the failed task's id."""

    __slots__ = ("exc", "cause", "remote")

    def __init__(self, exc=None, cause=None, remote=None):
        self.exc = exc  # a ready exception (WorkerError, WorkerDied)
        self.cause = cause  # the original exception, when it lives in this process
        self.remote = remote  # (pickled exception or None, message, traceback text) from a worker

    @classmethod
    def local(cls, exc, tb=None):
        """A task's exception caught in this process (thread backend, executor, dask)."""
        text = "".join(traceback.format_exception(type(exc), exc, tb if tb is not None else exc.__traceback__))
        return cls(WorkerError(_one_line(exc), text), cause=exc)

    def raise_(self):
        if self.remote is None:
            raise self.exc from self.cause
        data, message, text = self.remote
        cause = None
        if data is not None:
            try:
                cause = pickle.loads(data)
            except Exception:  # an exception class that does not unpickle: the text still tells
                cause = None
        raise WorkerError(message, text) from cause


def _one_line(exc):
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def _describe(exc, skip_frames=1):
    """(pickled exception or None, one-line message, formatted traceback) for the parent."""
    tb = exc.__traceback__
    for _ in range(skip_frames):  # the worker loop's own frame tells the user nothing
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    try:
        data = pickle.dumps(exc, _PROTOCOL)
    except Exception:
        data = None
    return data, _one_line(exc), text


def _unsent(packet_id, exc):
    return _Failure(WorkerError(f"task {packet_id} could not be sent: {_one_line(exc)}",
                                "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))),
                    cause=exc)


def _exit_description(exitcode):
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


# ---------------------------------------------------------------------------------------------
# worker processes


def _parent_death_signal():
    """A callable that asks the kernel to SIGKILL the calling process when its parent (thread)
    exits (Linux prctl(PR_SET_PDEATHSIG)), or None where there is no such thing."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):
        return None
    prctl.restype = ctypes.c_int
    return functools.partial(prctl, 1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG = 1


_PDEATHSIG = None
_PDEATHSIG_LOOKED_UP = False


def _pdeathsig():
    global _PDEATHSIG, _PDEATHSIG_LOOKED_UP
    if not _PDEATHSIG_LOOKED_UP:  # resolved in the parent, so forked workers need no ctypes work
        _PDEATHSIG = _parent_death_signal()
        _PDEATHSIG_LOOKED_UP = True
    return _PDEATHSIG


def _worker_main(wid, tasks, results, func, parent_pid):
    """A worker process: run tasks from its own queue, send (wid, id, run time or -1, result or
    error) to the shared result queue, until it reads None (stop) or its parent is gone."""
    pdeathsig = _pdeathsig()  # forked: the parent's, looked up already
    if pdeathsig is not None:
        try:
            pdeathsig()
        except Exception:
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
    try:  # Ctrl-C reaches the whole process group: the parent decides what happens
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError):
        pass
    loads = pickle.loads
    get_many = tasks.get_many
    put = results.put
    put_many = results.put_many
    getppid = os.getppid
    clock = perf_counter
    done = []  # results not sent yet: short tasks answer in batches
    functions = {}  # pickled function -> function

    def flush():
        try:
            put_many(done)
        except BaseException:  # one of them does not pickle: send them one by one
            for message in done:
                try:
                    put(message)
                except BaseException as exc:
                    put((message[0], message[1], -1.0, _describe(exc, skip_frames=0)))
        done.clear()

    while True:
        try:
            batch = get_many(_MAX_CREDIT, timeout=_PARENT_CHECK)
        except Empty:
            if getppid() != parent_pid:
                os._exit(1)
            continue
        since = clock()
        for task in batch:
            if task is None:
                if done:
                    flush()
                return
            packet_id, payload = task
            t0 = clock()
            try:
                if func is None:
                    pickled_func, payload = payload
                    f = functions.get(pickled_func)
                    if f is None:
                        if len(functions) >= _FUNCTION_CACHE:
                            functions.clear()
                        f = functions[pickled_func] = loads(pickled_func)
                    args, kwargs = loads(payload)
                    result = f(*args, **kwargs)
                else:
                    args, kwargs = loads(payload)
                    result = func(*args, **kwargs)
                now = clock()
                done.append((wid, packet_id, now - t0, result))
                del result
            except BaseException as exc:
                now = clock()
                done.append((wid, packet_id, -1.0, _describe(exc)))
            if now - since >= _FLUSH_AFTER:
                flush()
                since = now
        if done:
            flush()


def _discard(q):
    """Let go of a process queue nobody will read again, without waiting to flush it."""
    for name in ("cancel_join_thread", "close"):
        method = getattr(q, name, None)
        if method is not None:
            try:
                method()
            except Exception:
                pass


class _MapEnd:
    __slots__ = ("error",)

    def __init__(self):
        self.error = None


class _Worker:
    __slots__ = ("wid", "proc", "tasks", "held", "stopped")

    def __init__(self, wid, proc, tasks):
        self.wid = wid
        self.proc = proc
        self.tasks = tasks
        self.held = deque()  # ids sent to this worker and not answered, in the order it runs them
        self.stopped = False  # the stop marker (None) was sent


class _ProcessBackend:
    """Worker processes with one task queue each, one result queue, one collector thread."""

    def __init__(self, buffer, ProcessQueue, count, daemon, func=None, ctx=None):
        self.buffer = buffer
        self.ProcessQueue = ProcessQueue
        self.count = count
        self.daemon = daemon
        self.func = func
        self.ctx = ctx
        self.lock = threading.Lock()
        self.workers = {}  # wid -> _Worker
        self.backlog = deque()  # (id, payload) waiting for a worker with room
        self.stopping = False
        self.killed = False
        self.broken = None  # the collector's failure
        self.wids = itertools.count()
        self.pickled = {}  # id(function) -> (function, its pickle), plain functions only
        self.credit = _MIN_CREDIT  # tasks in flight per worker, from the run times reported
        self.max_credit = max(_MIN_CREDIT, min(_MAX_CREDIT, buffer.window // count))
        self.run_time = 0.01  # seconds per task, a moving average; starts slow
        self.results = self._queue()
        self.started = threading.Event()
        self.start_error = None
        self.collector = threading.Thread(target=self._collect, name="fastq-parallel-collector", daemon=True)
        self.collector.start()
        self.started.wait()
        if self.start_error is not None:
            raise self.start_error

    def _queue(self):
        return self.ProcessQueue(ctx=self.ctx)

    # -- the put side ------------------------------------------------------------------------

    def prepare(self, func, args, kwargs):
        if self.func is not None:
            return pickle.dumps((args, kwargs), _PROTOCOL)
        # A plain function pickles as its module and name, always the same bytes: keep them
        # (pickle looks the module up through the import system on every dump).
        cached = self.pickled.get(id(func))
        if cached is not None and cached[0] is func:
            pickled_func = cached[1]
        else:
            pickled_func = pickle.dumps(func, _PROTOCOL)
            if type(func) in _PLAIN_FUNCTIONS:
                if len(self.pickled) >= _FUNCTION_CACHE:
                    self.pickled.clear()
                self.pickled[id(func)] = (func, pickled_func)  # holds func: its id stays its own
        return pickled_func, pickle.dumps((args, kwargs), _PROTOCOL)

    def submit(self, packet_id, payload):
        with self.lock:
            if self.broken is not None:
                raise WorkerError("the ParallelQueue's collector thread failed", _format(self.broken)) from self.broken
            worker = None if self.backlog else self._least_loaded()
            if worker is None:  # the collector sends it, with others, when a result comes back
                self.backlog.append((packet_id, payload))
            else:
                worker.tasks.put((packet_id, payload))
                worker.held.append(packet_id)

    def _least_loaded(self):
        """The worker with the fewest tasks among those below the credit, or None."""
        best = None
        credit = self.credit
        for worker in self.workers.values():
            n = len(worker.held)
            if n < credit and not worker.stopped and (best is None or n < len(best.held)):
                best = worker
                if n == 0:
                    break
        return best

    def _dispatch(self):
        """Send waiting tasks to workers with room, least loaded first, several at a time; once
        stopping and nothing waits, tell every worker to stop. Called with the lock held."""
        backlog = self.backlog
        if backlog:
            credit = self.credit
            for worker in sorted(self.workers.values(), key=lambda w: len(w.held)):
                room = credit - len(worker.held)
                if room <= 0 or worker.stopped:
                    continue
                if room == 1 or len(backlog) == 1:
                    packet_id, payload = task = backlog.popleft()
                    worker.tasks.put(task)
                    worker.held.append(packet_id)
                else:
                    tasks = [backlog.popleft() for _ in range(min(room, len(backlog)))]
                    worker.tasks.put_many(tasks)
                    worker.held.extend([packet_id for packet_id, _ in tasks])
                if not backlog:
                    break
        if self.stopping and not backlog:
            for worker in self.workers.values():
                if not worker.stopped:
                    worker.stopped = True
                    worker.tasks.put(None)

    def stop(self):
        with self.lock:
            self.stopping = True
            if self.broken is None:
                self._dispatch()

    def kill(self):
        """Stop now, dropping what is queued: the pool was garbage collected (or the interpreter
        exits). The collector terminates and reaps the workers."""
        self.killed = True
        self.stopping = True
        for worker in list(self.workers.values()):
            try:
                worker.proc.terminate()
            except Exception:
                pass

    def join(self, timeout=None):
        self.collector.join(timeout)

    def is_alive(self):
        return self.collector.is_alive()

    def pids(self):
        return [w.proc.pid for w in list(self.workers.values())]

    # -- the collector thread ----------------------------------------------------------------

    def _start_worker(self):
        wid = next(self.wids)
        tasks = self._queue()
        target_ctx = self.ctx or multiprocessing
        _pdeathsig()  # look it up once here, so forked workers inherit it
        proc = target_ctx.Process(
            target=_worker_main,
            args=(wid, tasks, self.results, self.func, os.getpid()),
            name=f"fastq-parallel-worker-{wid}",
            daemon=self.daemon,
        )
        proc.start()
        worker = _Worker(wid, proc, tasks)
        with self.lock:
            self.workers[wid] = worker
            self._dispatch()
        return worker

    def _collect(self):
        try:
            try:
                for _ in range(self.count):
                    self._start_worker()
            except BaseException as exc:
                self.start_error = exc
                raise
            finally:
                self.started.set()
            self._loop()
        except BaseException as exc:
            self._fail(exc)
        finally:
            self._shutdown_workers()

    def _loop(self):
        get_many = self.results.get_many
        wait = multiprocessing.connection.wait
        next_check = monotonic() + _SLICE
        while True:
            if self.killed:
                return
            try:
                batch = get_many(_BATCH, timeout=_SLICE)
            except Empty:
                batch = None
            if batch:
                self._file(batch)
                now = monotonic()
                if now < next_check:
                    continue
                next_check = now + _SLICE
            workers = list(self.workers.values())
            if not workers:
                with self.lock:
                    finished = self.stopping and not self.backlog
                if finished:
                    self._drain()
                    return
                self._start_worker()  # every worker stopped or died while tasks still wait
                continue
            dead = wait([w.proc.sentinel for w in workers], timeout=0)
            if dead:
                dead = set(dead)
                self._bury([w for w in workers if w.proc.sentinel in dead])

    def _file(self, batch):
        buffer_put = self.buffer.put
        with self.lock:
            workers = self.workers
            run_time = self.run_time
            for wid, packet_id, took, value in batch:
                if took >= 0.0:
                    run_time += (took - run_time) * 0.125
                worker = workers.get(wid)
                if worker is None:
                    continue  # from a worker already buried: its ids were filled with WorkerDied
                held = worker.held
                if held and held[0] == packet_id:
                    held.popleft()
                else:
                    try:
                        held.remove(packet_id)
                    except ValueError:  # filled already (a put that failed half-way)
                        continue
                buffer_put(packet_id, value if took >= 0.0 else _Failure(remote=value))
            self.run_time = run_time
            self.credit = max(_MIN_CREDIT, min(self.max_credit, int(_QUEUED_WORK / (run_time + 1e-6))))
            if self.backlog or self.stopping:
                self._dispatch()

    def _drain(self):
        """File whatever the result queue holds now."""
        while True:
            try:
                batch = self.results.get_many(_BATCH, block=False)
            except Empty:
                return
            self._file(batch)

    def _bury(self, dead):
        self._drain()  # results a dead worker sent before it died still count
        replace = 0
        with self.lock:
            for worker in dead:
                worker.proc.join()  # reap
                del self.workers[worker.wid]
                if worker.held:
                    died = _exit_description(worker.proc.exitcode)
                    for packet_id in worker.held:
                        exc = WorkerDied(f"worker process {worker.proc.pid} died ({died}) while it held task {packet_id}")
                        self.buffer.put(packet_id, _Failure(exc))
                    worker.held.clear()
                _discard(worker.tasks)
                if not worker.stopped:
                    replace += 1
            if self.stopping and not self.backlog:
                replace = 0
        for _ in range(replace):
            if self.killed:
                break
            self._start_worker()

    def _fail(self, exc):
        """The collector itself failed: every id it was responsible for gets the failure, and
        later puts raise it. Never silent."""
        with self.lock:
            self.broken = exc
            text = _format(exc)
            message = f"the ParallelQueue's collector thread failed: {_one_line(exc)}"
            ids = [pid for w in self.workers.values() for pid in w.held]
            ids += [pid for pid, _ in self.backlog]
            for worker in self.workers.values():
                worker.held.clear()
            self.backlog.clear()
            for packet_id in ids:
                try:
                    self.buffer.put(packet_id, _Failure(WorkerError(message, text), cause=exc))
                except Exception:
                    pass

    def _shutdown_workers(self):
        workers = list(self.workers.values())
        for worker in workers:
            if self.killed or self.broken is not None:
                try:
                    worker.proc.terminate()
                except Exception:
                    pass
        for worker in workers:
            worker.proc.join(1.0)
            if worker.proc.exitcode is None:
                worker.proc.kill()
                worker.proc.join()
            _discard(worker.tasks)
        self.workers.clear()
        _discard(self.results)


def _format(exc):
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


# ---------------------------------------------------------------------------------------------
# in-process and external backends


class _ThreadBackend:
    """A pool of threads reading a core Queue of (id, (func, args, kwargs)); one None per thread
    stops them (sentinels rather than Queue.shutdown(), which must wake every blocked getter)."""

    def __init__(self, buffer, Queue, count, daemon, func=None):
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

    def prepare(self, func, args, kwargs):
        return func if self.func is None else self.func, args, kwargs

    def submit(self, packet_id, task):
        self.tasks.put((packet_id, task))

    def _run(self):
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
                result = func(*args, **kwargs)
            except BaseException as exc:
                result = _Failure.local(exc)
            put(packet_id, result)
            del task, result, func, args, kwargs

    def stop(self):
        with self.stop_lock:
            if self.stopped:
                return
            self.stopped = True
        self.tasks.put_many([None] * len(self.threads))

    def kill(self):
        self.killed = True
        self.stop()

    def join(self, timeout=None):
        _join_all(self.threads, timeout)

    def is_alive(self):
        return any(t.is_alive() for t in self.threads)


def _join_all(threads, timeout):
    deadline = None if timeout is None else monotonic() + timeout
    for thread in threads:
        thread.join(None if deadline is None else max(0.0, deadline - monotonic()))


class _FutureBackend:
    """Tasks run by someone else's executor (concurrent.futures) or dask client; a done callback
    files each result. Those pools are the caller's: stop() does not shut them down; join() waits
    for this queue's own tasks."""

    def __init__(self, buffer, submit, func=None, dask=False):
        self.buffer = buffer
        self._submit = submit
        self.func = func
        self.dask = dask
        self.outstanding = 0
        self.stopped = False
        self.idle = threading.Condition(threading.Lock())
        self.futures = {}  # dask releases a task whose future is garbage collected: keep them

    def prepare(self, func, args, kwargs):
        return func if self.func is None else self.func, args, kwargs

    def submit(self, packet_id, task):
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

    def _file(self, packet_id, future):
        try:
            try:
                result = future.result()
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

    def _done(self):
        with self.idle:
            self.outstanding -= 1
            if not self.outstanding:
                self.idle.notify_all()

    def stop(self):
        with self.idle:
            self.stopped = True
            self.idle.notify_all()

    kill = stop

    def join(self, timeout=None):
        with self.idle:
            self.idle.wait_for(lambda: self.stopped and not self.outstanding, timeout)

    def is_alive(self):
        with self.idle:
            return not (self.stopped and not self.outstanding)


_DASK_KEYWORDS = frozenset(("key", "workers", "resources", "retries", "priority", "fifo_timeout",
                            "allow_other_workers", "actor", "actors", "pure"))


def _call(func, args, kwargs):
    return func(*args, **kwargs)


def _died_or_failed(exc, tb=None):
    from concurrent.futures.process import BrokenProcessPool

    if isinstance(exc, BrokenProcessPool):
        return _Failure(WorkerDied(f"the executor's worker process died: {exc}"), cause=exc)
    return _Failure.local(exc, tb)


def _is_dask_client(obj):
    distributed = sys.modules.get("distributed")
    client = getattr(distributed, "Client", None)
    return client is not None and isinstance(obj, client)


# ---------------------------------------------------------------------------------------------
# interpreter exit: non-daemon pools are stopped (their tasks finish), daemon ones killed

_non_daemon_pools = weakref.WeakSet()


@atexit.register
def _stop_non_daemon_pools():
    for pool in list(_non_daemon_pools):
        try:
            pool.stop()
        except Exception:
            pass


# ---------------------------------------------------------------------------------------------
# the public classes, bound to a core


@functools.cache
def bind(ReorderBuffer, Queue, ProcessQueue):
    """ParallelQueue and ParallelSingleTaskQueue for one core's ReorderBuffer, Queue (thread
    backend) and ProcessQueue (process backend: the task queues and the result queue)."""

    class ParallelQueue:
        """Run tasks in parallel and get their results back in submission order.

        put(func, *args, **kwargs) runs func(*args, **kwargs) on a worker; get() returns the
        results in the order of the puts. A non-callable put on its own passes through to get()
        in its place in the order (a marker between batches, say). A task's exception surfaces at
        its get() as WorkerError (the worker's traceback in `.traceback`, the original exception
        as `__cause__` when it could be brought back); a worker process that dies holding a task
        surfaces there as WorkerDied, a replacement starts and the stream goes on.

        At most `buffer_size` results are reserved and not yet taken by get(): past that, put()
        blocks (queue.Full on timeout). So a caller that puts everything before it gets anything
        must put from another thread, or use map(), which does that for it.

        backend: "process" (the default), "thread", a concurrent.futures.Executor or a
        distributed.Client (those two are the caller's: stop() and join() do not shut them
        down, and worker_count does not apply). daemon: daemon worker processes/threads are
        killed when the interpreter exits; non-daemon ones are stopped then and finish their
        tasks (and non-daemon processes may start processes of their own).

        stop() refuses further puts; workers finish what was put. Iteration yields results until
        the queue is stopped and drained; get() then raises Closed. join(timeout) waits for the
        workers after stop(). As a context manager, the exit stops and joins. put() and get()
        may be called from any thread.
        """

        _single_task = False

        def __init__(self, worker_count=None, *, backend="process", buffer_size=None, daemon=True, _start=0):
            self._init(None, worker_count, backend, buffer_size, daemon, _start)

        def _init(self, func, worker_count, backend, buffer_size, daemon, start):
            cpus = _cpu_count()
            if worker_count is None:
                worker_count = cpus
            worker_count = worker_count.__index__()
            if worker_count < 1:
                raise ValueError(f"worker_count must be at least 1, not {worker_count}")
            if buffer_size is None:
                buffer_size = default_buffer_size(cpus)
            buffer_size = buffer_size.__index__()
            if buffer_size < 1:
                raise ValueError(f"buffer_size must be at least 1, not {buffer_size}")
            buffer_size = 1 << (buffer_size - 1).bit_length()  # the window is a power of two
            self.worker_count = worker_count
            self.buffer_size = buffer_size
            self._buffer = ReorderBuffer(buffer_size, start=start)
            self._start = start
            self._lock = threading.Lock()
            self._stopped = False
            # stop() tells the backend to stop once every reserved id was handed over (sent,
            # passed through or filled): ids counted (mod 2**32) against the buffer's final next_id
            self._accounted = 0
            self._expected = None
            self._backend_stopped = False
            if isinstance(backend, str):
                if backend == "process":
                    self._backend = _ProcessBackend(self._buffer, ProcessQueue, worker_count, daemon,
                                                    func, _process_context(func))
                elif backend == "thread":
                    self._backend = _ThreadBackend(self._buffer, Queue, worker_count, daemon, func)
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

        def _reserve(self, block, timeout):
            if self._stopped:
                raise Closed("put() on a stopped ParallelQueue")
            try:
                return self._buffer.reserve(block, timeout)
            except ShutDown:
                raise Closed("put() on a stopped ParallelQueue") from None

        def _account(self):
            """Count one reserved id as handed over; after stop(), the last one stops the backend."""
            with self._lock:
                self._accounted = (self._accounted + 1) & 0xFFFFFFFF
                last = self._accounted == self._expected and not self._backend_stopped
                if last:
                    self._backend_stopped = True
            if last:
                self._backend.stop()

        def put(self, func, *args, block=True, timeout=None, **kwargs):
            """Run func(*args, **kwargs) on a worker; its result comes out of get() in the order
            of the puts. A non-callable `func` on its own passes through to get() in order.
            Blocks while `buffer_size` results are pending (queue.Full after `timeout` seconds,
            or at once with block false); raises Closed after stop()."""
            if not callable(func):
                if args or kwargs:
                    raise ValueError(f"put() of a non-callable {type(func).__name__!r} with arguments: "
                                     "only a callable takes arguments (a non-callable alone passes through)")
                self._passthrough(func, block, timeout)
                return
            self._submit(func, args, kwargs, block, timeout)

        def _passthrough(self, item, block, timeout):
            packet_id = self._reserve(block, timeout)
            try:
                self._buffer.put(packet_id, item)
            finally:
                self._account()

        def _submit(self, func, args, kwargs, block, timeout):
            task = self._backend.prepare(func, args, kwargs)  # serialized before its id exists
            packet_id = self._reserve(block, timeout)
            try:
                self._backend.submit(packet_id, task)
            except BaseException as exc:  # every reserved id gets filled
                try:
                    self._buffer.put(packet_id, _unsent(packet_id, exc))
                except ValueError:
                    pass
                raise
            finally:
                self._account()

        # -- get ------------------------------------------------------------------------------

        def get(self, block=True, timeout=None):
            """Return the next result in submission order, waiting for it if necessary (queue.Empty
            after `timeout` seconds, or at once with block false). A task's exception raises
            WorkerError; a worker that died holding the task raises WorkerDied. Once stopped and
            drained, raises Closed."""
            try:
                item = self._buffer.get(block, timeout)
            except ShutDown:
                raise Closed("get() on a stopped, drained ParallelQueue") from None
            if type(item) is _Failure:
                item.raise_()
            return item

        def __iter__(self):
            """Yield results until the queue is stopped and drained (a task's exception raises
            out of the loop, which ends it)."""
            while True:
                try:
                    item = self._buffer.get()
                except ShutDown:
                    return
                if type(item) is _Failure:
                    item.raise_()
                yield item

        # -- map ------------------------------------------------------------------------------

        def map(self, func, iterable):
            """Yield func(item) for each item, in order, while a thread feeds the puts (so the
            window never stalls the caller). The queue must have nothing pending (map takes the
            stream for itself); it is not stopped afterwards. A task's exception raises at its
            place; an exception from the iterable or from a put raises after the results before
            it. Leaving the loop early waits for the tasks already put and drops their results."""
            if not callable(func):
                raise TypeError(f"map() needs a callable, not {type(func).__name__!r}")
            return self._map(lambda item: self._submit(func, (item,), {}, True, 0.1), iterable)

        def _map(self, put_one, iterable):
            if self._buffer.pending:
                raise ValueError("map() on a ParallelQueue with results pending: get() them first")
            end = _MapEnd()  # passed through after the last task: the consumer needs no counting
            cancel = threading.Event()

            def feed():
                try:
                    for item in iterable:
                        while True:
                            if cancel.is_set():
                                return
                            try:
                                put_one(item)
                                break
                            except Full:
                                continue
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
            return self._map_results(end, cancel, feeder)

        def _map_results(self, end, cancel, feeder):
            finished = False
            try:
                while True:
                    try:
                        item = self.get()
                    except Closed:  # stopped before the end marker went in
                        finished = True
                        feeder.join()
                        if end.error is not None:
                            raise end.error from None
                        raise
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
                    while True:
                        try:
                            if self._buffer.get() is end:
                                break
                        except ShutDown:
                            break
                    feeder.join()

        # -- lifetime -------------------------------------------------------------------------

        def stop(self):
            """Refuse further puts; the workers finish every task already put, then exit.
            Results stay available to get() and iteration."""
            with self._lock:
                if self._stopped:
                    return
                self._stopped = True
            self._buffer.shutdown()  # wakes puts blocked on the window: they raise Closed
            with self._lock:  # no id can be reserved now: the count to wait for is final
                self._expected = (self._buffer.next_id - self._start) & 0xFFFFFFFF
                now = self._accounted == self._expected and not self._backend_stopped
                if now:
                    self._backend_stopped = True
            if now:
                self._backend.stop()

        @property
        def stopped(self):
            return self._stopped

        def join(self, timeout=None):
            """Wait until the workers have finished (after stop(); before it, raises
            ValueError, since they never would). With a timeout, returns when it expires;
            is_alive() tells which."""
            if not self._stopped:
                raise ValueError("join() before stop(): the workers would never finish")
            self._backend.join(timeout)

        def is_alive(self):
            """Whether any worker is still running (for an Executor or a Client: whether this
            queue's tasks or further puts may still come)."""
            return self._backend.is_alive()

        def qsize(self):
            """Results ready or running: ids reserved and not yet taken by get()."""
            return self._buffer.pending

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            self.stop()
            self.join()

        def __repr__(self):
            state = "stopped" if self._stopped else "running"
            return (f"<{type(self).__name__} {state} backend={self.backend!r} workers={self.worker_count} "
                    f"buffer_size={self.buffer_size} pending={self._buffer.pending}>")

    class ParallelSingleTaskQueue(ParallelQueue):
        """A ParallelQueue with one function baked in: put(*args, **kwargs) runs func(*args,
        **kwargs). With the process backend the workers are forked and inherit func, so nested
        functions and closures work (where fork is missing, func must pickle)."""

        _single_task = True

        def __init__(self, func, worker_count=None, *, backend="process", buffer_size=None, daemon=True, _start=0):
            if not callable(func):
                raise TypeError(f"ParallelSingleTaskQueue needs a callable, not {type(func).__name__!r}")
            self.func = func
            self._init(func, worker_count, backend, buffer_size, daemon, _start)

        def put(self, *args, block=True, timeout=None, **kwargs):
            """Run func(*args, **kwargs) on a worker; results come out of get() in order."""
            self._submit(self.func, args, kwargs, block, timeout)

        def map(self, iterable):
            """Yield func(item) for each item, in order (see ParallelQueue.map)."""
            return self._map(lambda item: self._submit(self.func, (item,), {}, True, 0.1), iterable)

    return ParallelQueue, ParallelSingleTaskQueue


def _process_context(func):
    """fork on Linux (fast start; ParallelSingleTaskQueue's func by inheritance); elsewhere the
    platform's default start method (then a single-task func must pickle)."""
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    ctx = multiprocessing.get_context()
    if func is not None and ctx.get_start_method() != "fork":
        pickle.dumps(func, _PROTOCOL)  # fails here, clearly, rather than in every worker
    return ctx
