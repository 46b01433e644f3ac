"""The forker: a single-threaded helper process that forks ParallelQueue's workers under fork.

Python 3.12+ warns (DeprecationWarning) when a multi-threaded process forks, and a queue's
process has its collector thread. So a fork-method queue forks this helper from the
constructing thread, before it starts a thread of its own, where the process runs no other
thread (the helper is then a fork of the process as it is, as the workers were); queues made
while threads run share the last one. It lives until the process exits or a later queue
replaces it.

A request is one message on a socketpair: the file descriptors of a worker's arguments
(SCM_RIGHTS, collected as a spawning Popen collects them for the forkserver), the arguments
pickled in a memfd, and the write end of a pipe the worker holds for life, whose read end is
the worker's sentinel in the parent. The helper forks, replies with the pid, and reaps a worker
when the parent asks for its exit code (only then: the pid is never reused before the parent
knows the worker is gone).

Parent death: the helper reads EOF when the parent process is gone (it polls getppid() too, in
case another process holds a copy of the parent's end), and exits; workers ask PR_SET_PDEATHSIG
against the helper, whose only thread is the one that forks them. No death signal against the
parent: it would fire when the constructing *thread* exits.
"""
import atexit
import os
import pickle
import signal
import socket
import struct
import threading
import time
from multiprocessing import context as _mp_context, reduction, util

_POLL = 1.0  # seconds: how often the helper checks that its parent is alive
_REPLY_TIMEOUT = 30.0
_MAX_MESSAGE = 1 << 16
_MAX_FDS = 64
_SETTLE = 0.05

_received: list[int] = []  # in a worker: the descriptors its request carried, for _Received.detach


class _Received:
    """A descriptor of a request, as the worker unpickles it (multiprocessing's DupFd protocol)."""

    def __init__(self, index):
        self.index = index

    def detach(self):
        return _received[self.index]


class _Collect:
    """Stands in for multiprocessing's spawning Popen while a request is pickled: every
    descriptor an object reduces to (a queue's, a shared value's) is sent along with it."""

    DupFd = _Received

    def __init__(self):
        self.fds = []

    def duplicate_for_child(self, fd):
        self.fds.append(fd)
        return len(self.fds) - 1


class ForkerGone(OSError):
    """The helper process is gone (killed), or did not answer in time."""


class Forker:
    """The parent's handle on a helper process. start() and reap() may be called from any thread."""

    def __init__(self, run):
        """Fork the helper now, from this thread. run(*request) runs in each worker and returns
        its exit code."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                ours.close()
                code = _serve(theirs, parent, run)
            finally:
                os._exit(code)
        theirs.close()
        self.pid = pid
        self.owner = parent
        self.sock = ours
        self.sock.settimeout(_REPLY_TIMEOUT)
        self.lock = threading.Lock()
        self.gone = False

    def _ask(self, message, fds=()):
        with self.lock:
            if self.gone:
                raise ForkerGone("the worker forker process is gone")
            try:
                socket.send_fds(self.sock, [message], list(fds))
                reply = self.sock.recv(_MAX_MESSAGE)
            except OSError as exc:  # also socket.timeout: a helper that does not answer is no use
                reply, error = b"", exc
            else:
                error = None
            if not reply:
                self._let_go()
                raise ForkerGone(f"the worker forker process {self.pid} is gone") from error
        kind, body = reply[:1], reply[1:]
        if kind == b"e":
            raise OSError(body.decode(errors="replace"))
        return body

    def start(self, request):
        """Fork a worker that runs run(*request); returns (pid, sentinel fd)."""
        collect = _Collect()
        _mp_context.set_spawning_popen(collect)
        try:
            payload = reduction.ForkingPickler.dumps(request, pickle.HIGHEST_PROTOCOL)
        finally:
            _mp_context.set_spawning_popen(None)
        data = _anonymous_file()  # the request travels as a file: no message size limit
        try:
            with open(data, "wb", closefd=False) as f:
                f.write(payload)
            os.lseek(data, 0, os.SEEK_SET)
            r, w = os.pipe()
            try:
                body = self._ask(b"s", [data, *collect.fds, w])
            except BaseException:
                os.close(r)
                raise
            finally:
                os.close(w)
        finally:
            os.close(data)
        return struct.unpack("q", body)[0], r

    def reap(self, pid):
        """pid's exit code (negative: killed by that signal), or None while it runs. A worker
        of a helper that is gone was killed by its death signal: -SIGKILL."""
        try:
            code = struct.unpack("q", self._ask(b"r" + struct.pack("q", pid)))[0]
        except ForkerGone:
            return -signal.SIGKILL
        return None if code == _RUNNING else code

    def close(self):
        """Let the helper go: it exits, and so do the workers it forked."""
        with self.lock:
            self._let_go()

    def _let_go(self):
        """Close our end (the helper exits on EOF, if it has not) and reap it. Lock held."""
        self.gone = True
        try:
            self.sock.close()
        except OSError:
            pass
        deadline = time.monotonic() + 5.0
        while True:
            try:
                done, _ = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        if not done:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except OSError:
                pass


_RUNNING = -(1 << 62)


def _anonymous_file():
    try:
        return os.memfd_create("fastq-worker-request", os.MFD_CLOEXEC)
    except (AttributeError, OSError):  # no memfd: an unlinked temporary file
        import tempfile

        fd, path = tempfile.mkstemp(prefix="fastq-worker-request-")
        os.unlink(path)
        return fd


def _serve(sock, parent, run):
    """The helper's loop: fork a worker per start request, reap one per reap request; exit when
    the parent is gone."""
    me = os.getpid()
    try:  # Ctrl-C reaches the whole process group: the parent decides
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError):
        pass
    sock.settimeout(_POLL)
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, _MAX_MESSAGE, _MAX_FDS)
        except socket.timeout:
            if os.getppid() != parent:
                return 0
            continue
        except OSError:
            return 0
        if not message:  # the parent closed its end, or exited
            return 0
        kind, body = message[:1], message[1:]
        if kind == b"s":
            try:
                pid = os.fork()
            except OSError as exc:
                reply = b"e" + str(exc).encode()
            else:
                if pid == 0:
                    _worker(sock, me, fds, run)
                reply = b"p" + struct.pack("q", pid)
            for fd in fds:
                os.close(fd)
        else:
            pid = struct.unpack("q", body)[0]
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # not ours, or reaped already
                done, status = pid, 255 << 8
            code = os.waitstatus_to_exitcode(status) if done else _RUNNING
            reply = b"p" + struct.pack("q", code)
        try:
            sock.send(reply)
        except OSError:
            return 0


def _worker(sock, forker, fds, run):
    """In a forked worker: unpickle the request (its descriptors come from `fds`) and run it."""
    code = 1
    try:
        sock.close()
        from ._process_backend import _pdeathsig

        pdeathsig = _pdeathsig()
        if pdeathsig is not None:
            pdeathsig()  # against the helper, whose only thread forked this process
        if os.getppid() != forker:
            os._exit(1)  # the helper died before prctl took effect
        atexit._clear()  # the parent's handlers are not this process's (as multiprocessing's fork)
        with open(fds[0], "rb") as f:
            payload = f.read()
        _received[:] = fds[1:]
        code = run(*pickle.loads(payload))
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


_shared = None
_shared_lock = threading.Lock()


def running():
    """Whether this process has a live forker."""
    forker = _shared
    return forker is not None and not forker.gone and forker.owner == os.getpid()


def threaded():
    """Whether this process runs more than one thread: Python's, or native ones (a thread just
    joined may linger in the kernel a few milliseconds: given up to _SETTLE seconds to go)."""
    if threading.active_count() > 1:
        return True
    deadline = time.monotonic() + _SETTLE
    while _native_threads() > 1:
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.001)
    return False


def _native_threads():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 1


def shared(run, own=False):
    """(forker, whether it is the caller's own to close). This process's forker, forked now from
    the calling thread with `run` where the process runs no other thread (a fork of the process
    as it is now; the one before it serves nobody: every queue that used it had a thread, now
    gone) or has none; else, with `own`, a new one for the caller, which needs `run`."""
    global _shared
    with _shared_lock:
        if running() and not threaded():
            _shared.close()
        if not running():
            _shared = Forker(run)
            return _shared, False
        if own:
            return Forker(run), True
        return _shared, False
