"""ProcessQueue keeps its promises in the paths a random SIGKILL torture never takes: one regression
test per defect of the review (the numbers are its items), on both cores where the behaviour
applies. The protocol these tests hold to is docs/design/SHM-QUEUE.md; the enumeration of every kill
and stop point is tests/test_crashpoints.py.

The C tests reach into the segment's header (docs/design/SHM-QUEUE.md, "Layout"): the reserve lock
word at HDR_RLOCK, the not-empty waiter count at HDR_NE_WAITERS.
"""
import ctypes
import errno
import gc
import json
import multiprocessing as mp
import os
import pickle
import resource
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from fastq import Empty, Full, ShutDown
from test_process_queue import PQ, FAST_METHOD, WAIT, crash_h, _until, h  # noqa: F401 (fixtures)

pytestmark = pytest.mark.timeout(120)

HDR_RLOCK = 80        # producers' line (64): tail, next_seq, rlock
HDR_NE_WAITERS = 320  # ne_seq and ne_waiters each have a line of their own (256, 320)
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _ident(pid):
    """The ring's identity of a process: pid | start time << 22 (docs/design/SHM-QUEUE.md)."""
    with open(f"/proc/{pid}/stat") as f:
        start = int(f.read().rsplit(")", 1)[1].split()[19])
    return pid | (start << 22)


def _hold_lock_as(q, pid):
    """Make the reserve lock look held by process `pid` (a live one, or one about to change)."""
    struct.pack_into("<Q", q._segment_view(), HDR_RLOCK, _ident(pid))


def _proc_state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def _threads(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))


def _spill_names():
    return {n for n in os.listdir("/dev/shm") if n.startswith("fastq-") and not n.startswith("fastq-q-")}


def _named_segments():
    return {n for n in os.listdir("/dev/shm") if n.startswith("fastq-q-")}


# --- children ----------------------------------------------------------------------------------


def _slow_consumer(q, done):
    for _ in range(50):
        q.get(timeout=WAIT)
        time.sleep(0.002)
        with done.get_lock():
            done.value += 1
        q.task_done()


def _join_in_child(q, timeout, out):
    out.put(q.join(timeout))


def _put_and_exit(q):
    q.put("from the child")


def _blocked_get(q):
    try:
        q.get(timeout=WAIT)
    except Empty:
        pass


def _sleep_forever():
    while True:
        time.sleep(1)


def _main_thread_exits():
    threading.Thread(target=_sleep_forever, daemon=False).start()
    ctypes.CDLL(None).pthread_exit(None)


def _json_dumps(obj):
    return json.dumps(obj).encode()


def _json_round_trip(q, out):
    out.put(q.get(timeout=WAIT))


class BadOnLoad:
    """Pickles fine; unpickling it raises."""

    def __reduce__(self):
        return (_fail_on_load, ())


def _fail_on_load():
    raise RuntimeError("this item cannot be unpickled")


# --- 1. join() counts an item from the moment put() returns -------------------------------------


def test_1_join_waits_for_items_in_a_backlog(h):
    q = h.queue(capacity=4096)  # holds two 1.5 KB items: the other 48 wait in this process's backlog
    for i in range(50):
        q.put(bytes(1500))
    out = mp.get_context(FAST_METHOD).SimpleQueue()
    h.finish(h.start(_join_in_child, q, 0.3, out))
    assert out.get() is False  # another process sees the backlog as unfinished
    done = mp.get_context(FAST_METHOD).Value("i", 0)
    consumer = h.start(_slow_consumer, q, done)
    assert q.join(timeout=WAIT) is True
    assert done.value == 50  # join() returned only when every item was done
    h.finish(consumer)


# --- 2. the feeder thread's failures reach the caller; later items still flow ---------------------


_FULL_SHM_SCRIPT = textwrap.dedent("""
    import errno, sys
    from fastq import ProcessQueue, Empty
    q = ProcessQueue(capacity=1 << 16)            # items over ~20 KiB spill into /dev/shm (1 MiB here)
    try:
        q.put(bytes(2 << 20))                     # the ring has room: put() makes the segment itself
    except OSError as e:
        assert e.errno == errno.ENOSPC and "--shm-size" in str(e), e
    else:
        sys.exit("a 2 MiB item fitted a 1 MiB /dev/shm")
    for i in range(6):
        q.put(bytes(12000))                       # fill the ring: what follows waits in the backlog
    try:
        q.put(bytes(2 << 20))                     # the backlog's check of /dev/shm
    except OSError as e:
        assert e.errno == errno.ENOSPC and "--shm-size" in str(e), e
    else:
        sys.exit("a backlog item was accepted with no room for its segment")
    q.put(bytes(600 << 10))                       # fits alone...
    q.put(bytes(600 << 10) + b"x")                # ...but not beside the first: its feeder fails
    q.put(b"after")
    got = [len(q.get(timeout=10)) for _ in range(7)]
    assert q.get(timeout=10) == b"after"          # later items still flow
    assert got[-1] == 600 << 10, got
    try:
        q.join_thread()
        q.put(b"more")
    except OSError as e:                          # and the failure reaches this process's caller
        assert "could not be sent" in str(e), e
    else:
        sys.exit("the feeder's failure was never reported")
    print("ok")
""")


def test_2_a_full_dev_shm_fails_the_put_and_later_items_flow(crash_h, tmp_path):
    _run_in_small_dev_shm(tmp_path, _FULL_SHM_SCRIPT, "1m")


_GROWING_SCRIPT = textwrap.dedent("""
    from fastq import ProcessQueue
    q = ProcessQueue()                            # a 1 MiB ring: these items all spill
    for mib in (10, 20, 30):                      # each needs a new pooled segment; /dev/shm is 48 MiB
        q.put(bytes(mib << 20))                   # the third fits only once the idle ones are shed
        assert len(q.get(timeout=10)) == mib << 20
    q.put(bytes(12 << 20))
    assert len(q.get(timeout=10)) == 12 << 20
    print("ok")
""")


def _run_in_small_dev_shm(tmp_path, source, size):
    if not ROOT:
        pytest.skip("needs root to mount a small /dev/shm in a mount namespace")
    script = tmp_path / "small_shm.py"
    script.write_text(source)
    cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
           f"mount -t tmpfs -o size={size} tmpfs /dev/shm && exec {sys.executable} {script}"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        pytest.skip("no unshare(1)")
    if "mount" in r.stderr and r.returncode != 0 and "Traceback" not in r.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


def test_2_growing_items_shed_idle_pool_segments_when_dev_shm_is_short(crash_h, tmp_path):
    """The pool's unused segments give way to a new one when /dev/shm is short of room, rather than
    failing a put that would have fitted without the pool."""
    _run_in_small_dev_shm(tmp_path, _GROWING_SCRIPT, "48m")


# --- 3. get_many keeps the items before one that does not unpickle --------------------------------


def test_3_get_many_returns_items_before_a_bad_one(h):
    q = h.queue()
    q.put_many([1, 2, BadOnLoad(), 4])
    assert _until(lambda: q.qsize() == 4)
    assert q.get_many(10, timeout=WAIT) == [1, 2]
    with pytest.raises(RuntimeError, match="cannot be unpickled"):
        q.get(timeout=WAIT)
    assert q.get(timeout=WAIT) == 4
    with pytest.raises(Empty):
        q.get_nowait()


# --- 5. a named queue's name belongs to its last holder ----------------------------------------------


def test_5_a_fork_childs_exit_leaves_a_named_queue_usable(crash_h):
    before = _named_segments()
    q = crash_h.queue(named=True)
    assert len(_named_segments() - before) == 1
    crash_h.finish(crash_h.start(_put_and_exit, q, method="fork"))
    other = pickle.loads(pickle.dumps(q))  # attaches by name: the name must still be there
    assert other.get(timeout=WAIT) == "from the child"
    crash_h.queues.clear()
    del q, other
    gc.collect()
    assert _named_segments() - before == set()  # and the last holder removed it


def test_5_a_named_queue_collected_in_a_reference_cycle_removes_its_name(h):
    """The last handle of a named queue, freed by the cyclic collector (which may clear its fields
    before deallocating it), still removes the queue's name."""
    before = _named_segments()
    for first in ("dict", "queue"):  # the collector clears in allocation order: try both
        if first == "dict":
            d = {}
            q = h.cls(named=True)
        else:
            q = h.cls(named=True)
            d = {}
        q.put(b"x" * (1 << 20))
        d["q"], d["d"] = q, d
        del q, d
        gc.collect()
        assert _named_segments() - before == set(), first


# --- 6. an immediate shutdown discards what a put publishes after it ---------------------------------


def _put_small_then_big(q, size):
    q.put(b"small")
    try:
        q.put(bytes(size))
    except ShutDown:
        pass


def test_6_immediate_shutdown_discards_an_item_still_being_copied(crash_h):
    size = 48 << 20
    q = crash_h.queue(capacity=256 << 20)  # the big item stays in the ring: a long copy after reserving
    p = crash_h.start(_put_small_then_big, q, size, method="fork")
    assert _until(lambda: q.qsize() >= 2 or not p.is_alive(), step=0.0002)
    q.shutdown(immediate=True)
    crash_h.finish(p)
    with pytest.raises(ShutDown):
        q.get(timeout=1)
    assert q.join(timeout=WAIT) is True  # discarded records count as done
    assert q.qsize() == 0


# --- 7. a consumer that cannot open a large item's segment leaves it queued -----------------------


def _exhaust_fds():
    """Lower this process's fd limit and open fds up to it; returns them."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    fds = []
    try:
        while True:
            fds.append(os.open("/dev/null", os.O_RDONLY))
    except OSError:
        return fds


def _get_at_the_fd_limit(q, out):
    fds = _exhaust_fds()
    try:
        q.get(timeout=5)
        out.put("got it at the fd limit")
    except OSError as e:
        out.put(e.errno)
    for fd in fds:
        os.close(fd)
    out.put(len(q.get(timeout=5)))


def test_7_emfile_opening_a_spill_leaves_the_item_queued(crash_h):
    q = crash_h.queue(capacity=1 << 16)
    before = _spill_names()
    q.put(bytes(1 << 20))  # spilled
    out = mp.get_context("fork").SimpleQueue()
    crash_h.finish(crash_h.start(_get_at_the_fd_limit, q, out, method="fork"))
    assert out.get() in (errno.EMFILE, errno.ENFILE)
    assert out.get() == 1 << 20  # still there after the error, and whole
    # what is left is the queue's pooled segment, kept for the next large item, and it goes with the queue
    assert all(name.startswith("fastq-p") for name in _spill_names() - before)
    crash_h.queues.clear()
    del q
    gc.collect()
    assert _spill_names() - before == set()


# --- 9. 10. liveness: who counts as dead ------------------------------------------------------------


def test_10_a_process_that_exec_d_holds_no_lock(crash_h):
    q = crash_h.queue(4)
    p = crash_h.start(_sleep_forever, method="fork")  # maps the segment now...
    _hold_lock_as(q, p.pid)
    with pytest.raises(Full):
        q.put(1, timeout=0.1)  # ...so it is alive and holds the lock
    p.kill()
    p.join()
    # The same pid and start time, a new program: it no longer maps the segment.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert _until(lambda: "python" in open(f"/proc/{child.pid}/cmdline").read(), timeout=10)
        _hold_lock_as(q, child.pid)
        q.put("stolen", timeout=WAIT)  # the lock of a process that exec'd is taken back
        assert q.get(timeout=WAIT) == "stolen"
        q.task_done()
        assert q.join(timeout=WAIT) is True  # counts exact after the steal
    finally:
        child.kill()
        child.wait()


def test_10_a_process_whose_main_thread_exited_is_alive(crash_h):
    with open("/proc/self/maps") as f:
        if "libasan" in f.read():
            pytest.skip("ASan's runtime ends the whole process when its main thread exits")
    q = crash_h.queue(4)
    p = crash_h.start(_main_thread_exits, method="fork")
    assert _until(lambda: not p.is_alive() or _proc_state(p.pid) == "Z", timeout=10)
    if not p.is_alive() or _threads(p.pid) < 2:  # ASan's runtime, for one, dies of the main thread's exit
        pytest.skip("here the main thread's exit ends the whole process")
    _hold_lock_as(q, p.pid)
    with pytest.raises(Full):
        q.put(1, timeout=0.2)  # a zombie leader with a live thread still holds what it holds


def _forked_at_the_fd_limit(q, ready):
    fds = _exhaust_fds()
    pid = os.fork()  # the atfork handler cannot open /proc/self/stat here
    if pid == 0:
        for fd in fds:
            os.close(fd)
        os.write(ready, b"%d\n" % os.getpid())
        while True:
            time.sleep(1)
    for fd in fds:
        os.close(fd)
    os.waitpid(pid, 0)


def test_10_a_process_forked_at_the_fd_limit_is_not_robbed(crash_h):
    q = crash_h.queue(4)
    r, w = os.pipe()
    p = crash_h.start(_forked_at_the_fd_limit, q, w, method="fork")
    os.close(w)
    grandchild = int(os.read(r, 64))
    os.close(r)
    try:
        _hold_lock_as(q, grandchild)  # its own identity may carry an unknown start time: not 0
        struct.pack_into("<Q", q._segment_view(), HDR_RLOCK, grandchild | (((1 << 38) - 1) << 22))
        with pytest.raises(Full):
            q.put(1, timeout=0.2)  # alive: it keeps the lock
    finally:
        os.kill(grandchild, signal.SIGKILL)
        p.join(WAIT)


_PIDNS_SCRIPT = textwrap.dedent("""
    import ctypes, os, sys
    from fastq import ProcessQueue
    q = ProcessQueue()
    if ctypes.CDLL(None, use_errno=True).unshare(0x20000000) != 0:  # CLONE_NEWPID
        sys.exit(77)
    pid = os.fork()  # the child is pid 1 of a new namespace, with the segment mapped
    if pid == 0:
        try:
            q.put(1)
        except RuntimeError as e:
            os._exit(0 if "pid namespace" in str(e) else 3)
        os._exit(2)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))
""")


def test_10_a_fork_into_another_pid_namespace_is_refused(crash_h):
    if not ROOT:
        pytest.skip("unshare(CLONE_NEWPID) needs root")
    r = subprocess.run([sys.executable, "-c", _PIDNS_SCRIPT], capture_output=True, text=True, timeout=60)
    if r.returncode == 77:
        pytest.skip("cannot create a pid namespace here")
    assert r.returncode == 0, r.stdout + r.stderr


# --- 11. spill segments go with the last holder, whoever died on the way ---------------------------


def _put_huge(q, size):
    q.put(bytes(size))


def test_11_a_dead_writers_spill_goes_with_the_last_holder(crash_h):
    before = _spill_names()
    q = crash_h.queue(capacity=1 << 16)
    p = crash_h.start(_put_huge, q, 512 << 20, method="fork")
    assert _until(lambda: _spill_names() - before or not p.is_alive(), step=0.0002)
    os.kill(p.pid, signal.SIGKILL)  # most likely while it fills the segment: its record is WRITING
    p.join()
    crash_h.queues.clear()
    del q
    gc.collect()
    assert _spill_names() - before == set()


# --- 12. a stopped process never blocks a call past its timeout -------------------------------------


def test_12_calls_honour_their_timeouts_while_a_stopped_process_holds_the_lock(crash_h):
    bounded, unbounded = crash_h.queue(4), crash_h.queue()
    p = crash_h.start(_sleep_forever, method="fork")
    for q in (bounded, unbounded):
        _hold_lock_as(q, p.pid)
    os.kill(p.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        with pytest.raises(Full):
            bounded.put_nowait(1)
        with pytest.raises(Full):
            bounded.put(1, timeout=0.2)
        unbounded.put_nowait("waits in the backlog")  # unbounded: put never blocks
        with pytest.raises(Empty):
            unbounded.get(timeout=0.1)
        bounded.shutdown()  # no lock needed
        with pytest.raises(ShutDown):
            bounded.put(1)
        assert time.monotonic() - t0 < 2.0
        assert unbounded.qsize() == 1  # counted, in this process's backlog
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.join()
    # the holder is dead now: the backlog's feeder takes the lock back and the item arrives
    assert unbounded.get(timeout=WAIT) == "waits in the backlog"


# --- 13. 14. bad arguments, alike on both cores -----------------------------------------------------


@pytest.mark.parametrize("capacity, error", [
    (4096.0, TypeError), ("4096", TypeError), (-1, ValueError), (100, ValueError), (2 ** 64, ValueError),
])
def test_13_bad_capacities(PQ, capacity, error):
    with pytest.raises(error):
        PQ(capacity=capacity)


@pytest.mark.parametrize("kwargs, error", [
    ({"ctx": "spawn"}, TypeError), ({"maxsize": "big"}, TypeError), ({"serializer": (json.dumps,)}, TypeError),
    ({"serializer": (1, 2)}, TypeError),
])
def test_13_bad_arguments(PQ, kwargs, error):
    with pytest.raises(error):
        PQ(**kwargs)


def test_13_capacity_rounds_up_to_a_power_of_two(h):
    assert h.queue(capacity=5000).capacity == 8192


@pytest.mark.parametrize("size", [4000, 4064, 4100, 5120, 6000])
def test_13_items_near_a_small_rings_size_arrive(h, size):
    q = h.queue(capacity=4096)
    q.put(bytes(size))
    assert q.get(timeout=WAIT) == bytes(size)


def test_14_an_uninitialized_queue_raises(crash_h):
    q = crash_h.cls.__new__(crash_h.cls)
    for attr in ("maxsize", "capacity", "is_shutdown"):
        with pytest.raises(ValueError, match="not initialized"):
            getattr(q, attr)
    with pytest.raises(ValueError, match="not initialized"):
        q.qsize()


# --- 16. the marks of a sleeper killed in its sleep are taken back -----------------------------------


def test_16_a_killed_sleepers_mark_is_swept(crash_h):
    q = crash_h.queue()
    p = crash_h.start(_blocked_get, q, method="fork")
    view = q._segment_view()
    assert _until(lambda: struct.unpack_from("<I", view, HDR_NE_WAITERS)[0] == 1)
    p.kill()
    p.join()
    with pytest.raises(Empty):
        q.get(timeout=1.2)  # a waiter sweeps dead sleepers' marks about once a second
    assert struct.unpack_from("<I", view, HDR_NE_WAITERS)[0] == 0


# --- 17. serializer= : a queue need not unpickle ---------------------------------------------------


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_17_a_serializer_replaces_pickle(h, method):
    q = h.queue(serializer=(_json_dumps, json.loads), ctx=mp.get_context(method))
    q.put({"a": [1, 2]})
    q.put(b"raw bytes")  # exact bytes travel raw, as with pickle
    assert q.get(timeout=WAIT) == {"a": [1, 2]}
    assert q.get(timeout=WAIT) == b"raw bytes"
    with pytest.raises(TypeError):
        q.put(object())  # json cannot: the error is put()'s, and nothing was queued
    q.put(["x"])
    out = mp.get_context(method).SimpleQueue()
    h.finish(h.start(_json_round_trip, q, out, method=method))  # the serializer travels with the queue
    assert out.get() == ["x"]


# --- found by attacking this session's changes ------------------------------------------------------


def _sleep_briefly():
    time.sleep(0.5)


def test_a_fork_child_that_holds_the_queue_last_removes_its_files(crash_h):
    """The last holder may be a child that never touched the queue: multiprocessing ends it with
    os._exit, after its finalizers, and one of them lets go of the queue."""
    before_names, before_spills = _named_segments(), _spill_names()
    q = crash_h.queue(named=True, capacity=1 << 16)
    q.put(bytes(1 << 20))  # a spill segment, still queued
    p = crash_h.start(_sleep_briefly, method="fork")
    crash_h.queues.clear()
    del q
    gc.collect()  # the parent lets go first: the child still holds it
    crash_h.finish(p)
    assert _until(lambda: _named_segments() - before_names == set() and _spill_names() - before_spills == set(),
                  timeout=5)


def test_at_most_128_iterable_producers_and_members_still_fit(crash_h):
    q = crash_h.queue()
    tokens = [q._producer_register() for _ in range(128)]
    with pytest.raises(RuntimeError, match="at most 128"):
        q._producer_register()
    p = crash_h.start(_blocked_get, q, method="fork")  # a sleeper still gets a member slot
    view = q._segment_view()
    assert _until(lambda: struct.unpack_from("<I", view, HDR_NE_WAITERS)[0] == 1)
    p.kill()
    p.join()
    for token in tokens:
        q._producer_unregister(token)


def _not_bytes(obj):
    return 5


@pytest.mark.parametrize("dumps", [_not_bytes, json.dumps], ids=["an-int", "a-str"])
def test_a_serializer_must_return_bytes(h, dumps):
    q = h.queue(serializer=(dumps, json.loads))
    with pytest.raises(TypeError, match="bytes-like"):
        q.put({"a": 1})
    q.put(bytearray(b"raw"))  # bytes and bytearray still travel raw, on both cores
    got = q.get(timeout=WAIT)
    assert got == bytearray(b"raw") and type(got) is bytearray


def test_an_item_with_more_out_of_band_buffers_than_a_record_carries_arrives(h):
    item = [pickle.PickleBuffer(bytes([i % 256]) * 4096) for i in range(5000)]
    q = h.queue(capacity=64 << 20)
    q.put(item)
    q.put("next")
    got = q.get(timeout=WAIT)
    assert len(got) == 5000 and bytes(got[4999]) == bytes([4999 % 256]) * 4096
    assert q.get(timeout=WAIT) == "next"


def test_maxsize_out_of_range(PQ):
    with pytest.raises(ValueError):
        PQ(2 ** 64)
