"""ParallelQueue's "process" backend (fastq/parallel.py holds the rest).

Worker processes, each with its own small task queue (a core ProcessQueue), and one shared
result queue. Each worker holds a few tasks at a time (its credit), dispatched to the least
loaded; the rest wait in the parent, so the parent always knows which ids each worker holds.
The credit is 2 for tasks of a millisecond or more and grows (up to the window divided by the
workers) to about 2 ms of work for shorter ones, from the run times workers report: a trivial
task then doesn't pay a round trip of its own. Workers send each result as soon as its task is
done, before they start the next, through a bounded result queue (its put is synchronous: no feeder
thread holds a result back), so the parent knows exactly which task a dead worker was running: the
first one it holds that has no result, if the worker's count of tasks begun (shared memory) says it
had begun one. A task whose args are None is a group of map()'s items (fastq/_chunk.py). A worker pickles each result on its own (its
buffers out of band), apart from its packet id: a result that does not unpickle in the parent then
fails at its own get() while the id still decodes, and the collector and the stream go on.

A collector thread takes results in batches (get_many), files them, sends waiting tasks in
batches (put_many), and watches the workers' sentinels: when a worker dies it drains the result
queue, fills the id the dead worker was running with WorkerDied, sends the tasks queued behind it
(which it never started: the parent keeps every task it sent until its result comes) to the other
workers, and starts a replacement with a fresh task queue. It catches everything and hands
failures to get(): it never dies silently. Workers exit when the parent dies (PR_SET_PDEATHSIG
on Linux, plus a getppid() check on every idle slice), and ignore SIGINT (the parent decides).

Start method (fastq/parallel.py chooses it): forkserver, spawn or fork. Functions travel by
reference where pickle can send them, else by value through cloudpickle (an extra: a lambda, a
closure, or a function of __main__ where the workers are not forks of this process as it is).
Under fork the forker (fastq/_forker.py), a single-threaded helper forked before this queue's
thread started, forks the workers, the first ones and the replacements (no fork of a threaded
process, which Python 3.12+ warns about); they are not this process's children: the forker
reaps them when asked (_ForkedProcess). If the forker is gone, the collector thread forks them,
as multiprocessing does. Under forkserver the server forks them: their death signal follows the
server, which exits when this process has and no process holds its "alive" pipe (workers close
their copy); a worker also checks on every idle slice that this process is alive.
"""
import functools
import itertools
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import threading
import types
import weakref
from collections import deque
from time import monotonic, perf_counter, sleep

from . import _forker
from ._chunk import _Chunk, run_chunk
from ._failure import _PROTOCOL, _Failure, _describe, _format, _one_line
from ._log import logger
from .errors import Empty, WorkerDied, WorkerError

_MIN_CREDIT = 2  # tasks in flight per worker process: one running, one waiting in its queue...
_QUEUED_WORK = 0.002  # ...or, for short tasks, about this many seconds of work queued per worker
_MAX_CREDIT = 64
_FUNCTION_CACHE = 256  # pickled functions remembered, each side
_PLAIN_FUNCTIONS: tuple[type, ...] = (types.FunctionType, types.BuiltinFunctionType)
_BATCH = 256  # results the collector takes per get_many
_SLICE = 0.1  # seconds: how often the collector looks at the workers' sentinels when idle
_PARENT_CHECK = 1.0  # seconds: how often an idle worker checks that its parent is alive


def _exit_description(exitcode):
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


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


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, someone else's (the pid was reused: the check is best effort)
        return True
    return True


def _let_the_forkserver_go():
    """Close this worker's copy of the forkserver's "alive" pipe: the server exits once every
    holder has, so a worker holding it would keep alive the server whose exit kills it."""
    forkserver = sys.modules.get("multiprocessing.forkserver")
    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is None:
        return
    try:
        os.close(fd)
    except OSError:
        pass
    # a process this worker starts through a forkserver gets a server of its own
    server._forkserver_alive_fd = server._forkserver_address = server._forkserver_pid = None


def _raise(exc, *args, **kwargs):
    raise exc


def _worker_main(wid, tasks, results, func, parent_pid, started):
    """A worker process: run tasks from its own queue, send (wid, id, run time or -1, result or
    error) to the shared result queue as each is done, until it reads None (stop) or the queue's
    process (parent_pid) is gone. `func`: the single task's function, or its pickle (bytes).
    `started` (shared memory) counts the tasks it began, for the parent to tell, if it dies,
    whether the first task it holds had begun."""
    pdeathsig = _pdeathsig()  # forked: the parent's, looked up already
    if pdeathsig is not None:
        try:
            pdeathsig()
        except Exception:
            pass
    ppid = os.getppid()  # parent_pid, or the forkserver
    if ppid == 1 or not _alive(parent_pid):
        os._exit(1)  # a parent died before prctl took effect
    _let_the_forkserver_go()
    if type(func) is bytes:
        try:
            func = pickle.loads(func)
        except BaseException as exc:  # every task fails with it (a worker that died would be replaced, forever)
            func = functools.partial(_raise, exc)
    try:  # Ctrl-C reaches the whole process group: the parent decides what happens
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError):
        pass
    loads = pickle.loads
    get_many = tasks.get_many
    send = results.put  # every message pickles: ints, a float, bytes and buffers, or a description
    getppid = os.getppid
    clock = perf_counter
    functions = {}  # pickled function -> function

    while True:
        try:
            batch = get_many(_MAX_CREDIT, timeout=_PARENT_CHECK)
        except Empty:
            if getppid() != ppid or not _alive(parent_pid):
                os._exit(1)
            continue
        for task in batch:
            if task is None:
                return
            packet_id, payload = task
            started.value += 1
            t0 = clock()
            try:
                f = func
                if f is None:
                    pickled_func, payload = payload
                    f = functions.get(pickled_func)
                    if f is None:
                        if len(functions) >= _FUNCTION_CACHE:
                            functions.clear()
                        f = functions[pickled_func] = loads(pickled_func)
                args, kwargs = loads(payload)
                result = f(*args, **kwargs) if args is not None else run_chunk(f, kwargs)  # None: map()'s group
                took = clock() - t0
            except BaseException as exc:
                message = (wid, packet_id, -1.0, _describe(exc))
            else:
                try:
                    message = (wid, packet_id, took, _encode(result))
                except BaseException as exc:
                    if type(result) is _Chunk:  # send the group's results that do pickle, then its failure
                        result.salvage()
                        message = (wid, packet_id, took, _encode(result))
                    else:
                        message = (wid, packet_id, -1.0, _describe(exc, skip_frames=0))
                del result
            send(message)  # before the next task starts: a death then costs only that one
            del message


def _run_forked(wid, tasks, results, func, parent_pid, started, daemon, inherited=None):
    """In a worker the forker forked: run _worker_main as a multiprocessing Process would.
    `inherited`: the single-task function the forker inherited, for func _INHERIT."""
    if type(func) is str:  # _INHERIT
        func = inherited
    proc = multiprocessing.get_context("fork").Process(
        target=_worker_main, args=(wid, tasks, results, func, parent_pid, started),
        name=f"fastq-parallel-worker-{wid}", daemon=daemon)
    return proc._bootstrap()


_INHERIT = "inherit"  # a worker's func: the one its forker inherited


def _run_inheriting(func, *request):
    return _run_forked(*request, inherited=func)


class _ForkedProcess:
    """A worker the forker forked, with the face of multiprocessing.Process that the collector
    uses. Not this process's child: the forker reaps it, when asked, and tells its exit code."""

    def __init__(self, forker, pid, sentinel):
        self.forker = forker
        self.pid = pid
        self.sentinel = sentinel  # the read end of a pipe the worker holds: EOF when it exits
        self.exitcode = None
        weakref.finalize(self, os.close, sentinel)

    def join(self, timeout=None):
        deadline = None if timeout is None else monotonic() + timeout
        if not multiprocessing.connection.wait([self.sentinel], timeout):
            return
        while self.exitcode is None:  # exited: a zombie of the forker's in a moment
            self.exitcode = self.forker.reap(self.pid)
            if self.exitcode is None:
                if deadline is not None and monotonic() >= deadline:
                    return
                sleep(0.005)

    def _signal(self, sig):
        if self.exitcode is None:  # not reaped yet: the pid is still the worker's
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def terminate(self):
        self._signal(signal.SIGTERM)

    def kill(self):
        self._signal(signal.SIGKILL)


def dumps_callable(func, by_value):
    """func pickled for a worker: by reference where pickle can (a function of a module), else by
    value through cloudpickle (a lambda, a closure); `by_value`: a function of __main__ goes by
    value too, where cloudpickle is installed (workers not forked from this process may lack it)."""
    cloudpickle = None
    if by_value and getattr(func, "__module__", None) == "__main__":
        try:
            import cloudpickle  # type: ignore[import-untyped,import-not-found,unused-ignore]
        except ImportError:
            pass
    if cloudpickle is None:
        try:
            return pickle.dumps(func, _PROTOCOL)
        except Exception as exc:
            error = exc
        try:
            import cloudpickle  # type: ignore[import-untyped,import-not-found,unused-ignore]
        except ImportError:
            raise TypeError(f"{func!r} does not pickle ({_one_line(error)}): install the "
                            "fastq-queue[cloudpickle] extra to send lambdas and closures to worker processes, "
                            "or use a function defined at module level") from error
    return cloudpickle.dumps(func, _PROTOCOL)


def _encode(result):
    """(pickled result, its out-of-band buffers or None): the result travels apart from its packet id
    (see the module's docstring); big buffers stay out of band, as the result queue sends them."""
    buffers = []
    data = pickle.dumps(result, _PROTOCOL, buffer_callback=buffers.append)
    return data, buffers or None


def _decode(packet_id, payload):
    """The result a worker sent, or the failure its get() raises when it does not unpickle here."""
    data, buffers = payload
    try:
        return pickle.loads(data, buffers=buffers)
    except BaseException as exc:
        return _Failure(WorkerError(f"the result of task {packet_id} could not be unpickled here: {_one_line(exc)}",
                                    _format(exc)), cause=exc)


def _discard(q):
    """Let go of a process queue nobody will read again, without waiting to flush it."""
    for name in ("cancel_join_thread", "close"):
        method = getattr(q, name, None)
        if method is not None:
            try:
                method()
            except Exception:
                pass


class _Worker:
    __slots__ = ("wid", "proc", "tasks", "held", "stopped", "started", "answered")

    def __init__(self, wid, proc, tasks, started):
        self.wid = wid
        self.proc = proc
        self.tasks = tasks
        self.started = started  # tasks it began (it counts them, in shared memory)
        self.answered = 0  # results it sent that were taken here
        self.held = deque()  # (id, task) sent to this worker and not answered, in the order it runs them
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
        self.owner = os.getpid()
        self.forks = ctx is not None and ctx.get_start_method() == "fork"
        # Under fork a single-threaded forker (fastq/_forker.py) forks the workers: one forked
        # now, before this queue starts its thread, where no other thread runs, else the
        # process's last one, a fork of the process as it was then (functions travel to it as to
        # a forkserver). A single-task function that cannot travel is inherited: by the forker
        # if this queue forks it, else by one of this queue's own.
        self.forker = None
        self.own_forker = False
        self.queue_ctx = ctx
        self.worker_func = func
        if self.forks and sys.platform.startswith("linux"):  # (its death signal and socket type are Linux's)
            try:
                self.worker_func = None if func is None else dumps_callable(func, by_value=True)
            except TypeError:
                self.worker_func = _INHERIT
                self.forker, self.own_forker = _forker.shared(functools.partial(_run_inheriting, func), own=True)
            else:
                self.forker, _ = _forker.shared(_run_forked)
            # the pure core's queues, sent to the forker, need named semaphores (a fork context's
            # are unlinked at once); the C core's ignore the context
            self.queue_ctx = multiprocessing.get_context("spawn")
        elif func is not None:
            self.worker_func = dumps_callable(func, by_value=True)
        self.lock = threading.Lock()
        self.workers = {}  # wid -> _Worker
        self.backlog = deque()  # (id, payload) waiting for a worker with room
        self.stopping = False
        self.killed = False
        self.broken = None  # the collector's failure
        self.wids = itertools.count()
        self.pickled = {}  # id(function) -> (function, its pickle), plain functions only
        self.prepared_bytes = 0  # the size of the last task prepare() serialized
        self.credit = _MIN_CREDIT  # tasks in flight per worker, from the run times reported
        self.max_credit = max(_MIN_CREDIT, min(_MAX_CREDIT, buffer.window // count))
        self.run_time = 0.01  # seconds per task, a moving average; starts slow
        # One result per id in the window at most, so a put never waits; bounded so that it is
        # synchronous (an unbounded queue's put may leave a result to a feeder thread).
        self.results = self.ProcessQueue(buffer.window, ctx=self.queue_ctx)
        self.started = threading.Event()
        self.start_error = None
        self.collector = threading.Thread(target=self._collect, name="fastq-parallel-collector", daemon=True)
        self.collector.start()
        self.started.wait()
        if self.start_error is not None:
            raise self.start_error

    def _queue(self):
        return self.ProcessQueue(ctx=self.queue_ctx)

    # -- the put side ------------------------------------------------------------------------

    def prepare(self, func, args, kwargs):
        payload = pickle.dumps((args, kwargs), _PROTOCOL)
        self.prepared_bytes = len(payload)  # map() keeps its groups of big items small by this
        if self.func is not None:
            return payload
        # A plain function pickles as its module and name, always the same bytes: keep them
        # (pickle looks the module up through the import system on every dump).
        cached = self.pickled.get(id(func))
        if cached is not None and cached[0] is func:
            pickled_func = cached[1]
        else:
            pickled_func = dumps_callable(func, by_value=True)  # workers may be forks of an older self
            if type(func) in _PLAIN_FUNCTIONS:
                if len(self.pickled) >= _FUNCTION_CACHE:
                    self.pickled.clear()
                self.pickled[id(func)] = (func, pickled_func)  # holds func: its id stays its own
        return pickled_func, payload

    def submit(self, packet_id, payload):
        with self.lock:
            if self.broken is not None:
                raise WorkerError("the ParallelQueue's collector thread failed", _format(self.broken)) from self.broken
            worker = None if self.backlog else self._least_loaded()
            if worker is None:  # the collector sends it, with others, when a result comes back
                self.backlog.append((packet_id, payload))
            else:
                worker.tasks.put((packet_id, payload))
                worker.held.append((packet_id, payload))

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
                    task = backlog.popleft()
                    worker.tasks.put(task)
                    worker.held.append(task)
                else:
                    tasks = [backlog.popleft() for _ in range(min(room, len(backlog)))]
                    worker.tasks.put_many(tasks)
                    worker.held.extend(tasks)
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
        if os.getpid() != self.owner:  # a fork of this process exits: the workers are not its
            return
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
        started = target_ctx.RawValue("Q", 0)
        _pdeathsig()  # look it up once here, so forked workers inherit it
        proc = None
        if self.forker is not None:
            try:
                pid, sentinel = self.forker.start(
                    (wid, tasks, self.results, self.worker_func, self.owner, started, self.daemon))
                proc = _ForkedProcess(self.forker, pid, sentinel)
            except _forker.ForkerGone as exc:  # killed: this thread forks from now on
                logger.warning("ParallelQueue: %s; the collector thread forks the workers from now on", exc)
                self.forker = None
                if self.worker_func is _INHERIT:
                    self.worker_func = self.func  # inherited from this process now
        if proc is None:
            proc = target_ctx.Process(
                target=_worker_main,
                args=(wid, tasks, self.results, self.worker_func, self.owner, started),
                name=f"fastq-parallel-worker-{wid}",
                daemon=self.daemon,
            )
            proc.start()
        worker = _Worker(wid, proc, tasks, started)
        with self.lock:
            self.workers[wid] = worker
            self._dispatch()
        logger.debug("ParallelQueue: started worker process %s", proc.pid)
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
        filed = []
        try:
            with self.lock:
                workers = self.workers
                run_time = self.run_time
                for wid, packet_id, took, value in batch:
                    if took >= 0.0:
                        run_time += (took - run_time) * 0.125
                    worker = workers.get(wid)
                    if worker is None:
                        continue  # from a worker already buried: its ids were filled with WorkerDied
                    worker.answered += 1
                    held = worker.held
                    if held and held[0][0] == packet_id:
                        held.popleft()
                    else:
                        for i, (held_id, _) in enumerate(held):
                            if held_id == packet_id:
                                del held[i]
                                break
                        else:  # filled already (a put that failed half-way)
                            continue
                    filed.append((packet_id, took, value))
                self.run_time = run_time
                self.credit = max(_MIN_CREDIT, min(self.max_credit, int(_QUEUED_WORK / (run_time + 1e-6))))
                if self.backlog or self.stopping:
                    self._dispatch()
        finally:
            # Filed last, just before this thread waits again without the GIL: the consumer
            # it wakes then finds the GIL free instead of going back to sleep on it. (Filed
            # even if a dispatch failed: every id taken out of `held` gets its result.) Results
            # are unpickled here, outside the lock, each on its own (_decode).
            buffer_put = self.buffer.put
            for packet_id, took, value in filed:
                buffer_put(packet_id, _decode(packet_id, value) if took >= 0.0 else _Failure(remote=value))

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
                held = worker.held
                died = _exit_description(worker.proc.exitcode)
                if held and worker.started.value == worker.answered:
                    logger.warning("ParallelQueue: worker process %s died (%s) between tasks; its %d "
                                   "task(s) go to other workers", worker.proc.pid, died, len(held))
                    self.backlog.extendleft(reversed(held))  # it began none: they all run elsewhere
                    held.clear()
                elif held:
                    # Results go out in order, each before the next task starts: the first
                    # task without one was running; the rest never started.
                    packet_id, _ = held.popleft()
                    exc = WorkerDied(f"worker process {worker.proc.pid} died ({died}) while it ran task {packet_id}")
                    self.buffer.put(packet_id, _Failure(exc))
                    logger.warning("ParallelQueue: %s; %d task(s) queued behind it go to other workers",
                                   exc, len(held))
                    self.backlog.extendleft(reversed(held))  # first in line, in their order
                    held.clear()
                elif not worker.stopped:
                    logger.warning("ParallelQueue: worker process %s died (%s) while idle", worker.proc.pid, died)
                _discard(worker.tasks)
                if not worker.stopped:
                    replace += 1
            if self.stopping and not self.backlog:
                replace = 0
        for _ in range(replace):
            if self.killed:
                break
            pid = self._start_worker().proc.pid
            logger.info("ParallelQueue: started worker process %s to replace a dead one", pid)

    def _fail(self, exc):
        """The collector itself failed: every id it was responsible for gets the failure, and
        later puts raise it. Never silent."""
        logger.error("ParallelQueue: the collector thread failed; its tasks fail with it", exc_info=exc)
        with self.lock:
            self.broken = exc
            text = _format(exc)
            message = f"the ParallelQueue's collector thread failed: {_one_line(exc)}"
            ids = [pid for w in self.workers.values() for pid, _ in w.held]
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
        if self.own_forker and self.forker is not None and os.getpid() == self.owner:
            self.forker.close()
