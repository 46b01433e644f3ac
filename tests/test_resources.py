"""Memory and resources over long runs and many lifetimes, on both cores.

- Flat memory: Queue, SimpleQueue, ProcessQueue and ReorderBuffer run 10M operations (`slow`;
  CI runs 200k) of fresh objects; after a warm-up, neither the process's RSS nor Python's
  allocated blocks may grow (a leaked reference per operation would show as hundreds of MiB).
- No leaks across lifetimes: 1000 create/use/close cycles of Queue, ProcessQueue (memfd and
  named=True, spill segments included), IterableQueue and ParallelQueue on the thread backend;
  a few of ParallelQueue on the process backend and on a dask client. After them the process has
  no more file descriptors, fastq mappings, threads (Python's and native) or /dev/shm entries of
  its own than before.

Under tools/sanitize (FASTQ_SANITIZE=1) ASan's quarantine holds freed memory, so the RSS half is
skipped there; the resource half still runs.
"""
import gc
import os
import sys
import textwrap
import threading
import time

import pytest
from subproc import run_python

LINUX = sys.platform.startswith("linux")
SANITIZED = os.environ.get("FASTQ_SANITIZE", "") not in ("", "0")
MiB = 1 << 20

pytestmark = pytest.mark.skipif(not LINUX, reason="reads /proc/self and /dev/shm")


# ---- flat memory -------------------------------------------------------------------------------------


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _blocks():
    gc.collect()
    return sys.getallocatedblocks()


def _queue_ops(Q):
    q = Q()

    def run(n):  # n operations: puts and gets, one at a time and in batches
        put, get = q.put, q.get
        for i in range(n // 4):
            put((i, "x"))
            get()
        batch = [(i, b"y" * 10) for i in range(8)]
        for _ in range(n // 32):
            q.put_many(batch)
            got = q.get_many(8)
            assert len(got) == 8
        return q

    return run


def _process_queue_ops(PQ):
    q = PQ(capacity=256 << 10)
    big = b"z" * (100 << 10)  # more than a quarter of the ring: a spill segment

    def run(n):
        put, get = q.put, q.get
        for i in range(n // 8):
            put((i, "x"))
            get()
            put(b"raw bytes %d" % i)
            get()
        for i in range(n // 16):  # with the loop above: n puts and gets in all
            q.put_many([i, str(i), bytearray(b"b" * 100), (i,)])
            got = q.get_many(4)
            while len(got) < 4:  # the pure core's get_many takes what its pipe holds already
                got += q.get_many(4 - len(got))
        for _ in range(max(1, n // 20000)):
            put(big)
            assert get() == big
        return q

    return run


def _reorder_ops(RB):
    b = RB(16)

    def run(n):
        for _ in range(n // 48):
            ids = [b.reserve() for _ in range(16)]
            for i in reversed(ids):
                b.put(i, (i, "x"))
            for _ in ids:
                b.get()
        return b

    return run


def _ops(impl, kind):
    if kind == "Queue":
        return _queue_ops(impl.Queue)
    if kind == "SimpleQueue":
        return _queue_ops(impl.SimpleQueue)
    if kind == "ProcessQueue":
        PQ = getattr(impl.module, "ProcessQueue", None)
        if PQ is None:
            pytest.skip("no ProcessQueue in this build")
        return _process_queue_ops(PQ)
    return _reorder_ops(impl.module.ReorderBuffer)


KINDS = ["Queue", "SimpleQueue", "ProcessQueue", "ReorderBuffer"]


def _flat(impl, kind, total):
    if SANITIZED:
        pytest.skip("ASan's quarantine holds freed memory: RSS says nothing under tools/sanitize")
    run = _ops(impl, kind)
    run(min(total // 10, 200_000))  # warm-up: free lists, caches, the ring's pages
    rss0, blocks0 = _rss(), _blocks()
    checkpoints = []
    step = total // 5
    for _ in range(5):
        run(step)
        checkpoints.append(_rss())
    grew = max(checkpoints) - rss0
    blocks = _blocks() - blocks0
    # a leak of one small object per operation: >= 32 B x total; allow a few MiB of noise
    print(f"{kind}: {total} ops, RSS {rss0 / MiB:.1f} MiB after warm-up, checkpoints "
          f"{[round(c / MiB, 1) for c in checkpoints]} MiB, grew {grew / MiB:.2f} MiB, Python blocks {blocks:+d}")
    assert grew < 4 * MiB + total // 100, f"RSS grew {grew / MiB:.1f} MiB over {total} ops: {checkpoints}"
    assert blocks < 1000, f"{blocks} Python blocks more after {total} ops"
    return grew


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", KINDS)
def test_flat_memory_short(impl, kind):
    _flat(impl, kind, 200_000)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("kind", KINDS)
def test_flat_memory_10M_operations(impl, kind):
    total = 10_000_000 if not impl.is_pure_python else 2_000_000  # the pure cores are ~10x slower
    _flat(impl, kind, total)


# ---- no leaks across lifetimes -------------------------------------------------------------------------


def _fastq_shm():
    return {n for n in os.listdir("/dev/shm") if n.startswith("fastq")}


def _resources():
    gc.collect()
    fds = len(os.listdir("/proc/self/fd"))
    with open("/proc/self/maps") as f:
        maps = sum(("fastq" in line) or ("/dev/shm/" in line) for line in f)
    native = len(os.listdir("/proc/self/task"))
    return {"fds": fds, "maps": maps, "threads": threading.active_count(), "native threads": native,
            "shm": _fastq_shm()}


def _settle(before, timeout=15.0):
    """Resources now, once threads that end on their own (feeders, pool threads) have ended."""
    deadline = time.monotonic() + timeout
    while True:
        now = _resources()
        done = (now["threads"] <= before["threads"] and now["native threads"] <= before["native threads"]
                and now["fds"] <= before["fds"] and not (now["shm"] - before["shm"]))
        if done or time.monotonic() > deadline:
            return now
        time.sleep(0.05)


def _no_leaks(cycle, n, warmup=5):
    for i in range(warmup):  # lazily created process-wide resources (multiprocessing's, the pools')
        cycle(i)
    time.sleep(0.2)
    before = _settle(_resources())
    for i in range(n):
        cycle(i)
    after = _settle(before)
    if after["shm"] - before["shm"]:  # other processes' segments come and go: look twice
        time.sleep(0.5)
        after["shm"] &= _fastq_shm()
    leaks = {k: (before[k], after[k]) for k in ("fds", "maps", "threads", "native threads") if after[k] > before[k]}
    # a leak per cycle shows as n; a stray descriptor of the interpreter's own (an import) is 1 or 2
    assert not {k: v for k, v in leaks.items() if v[1] - v[0] > 2}, f"leaked over {n} cycles: {leaks}"
    assert not (after["shm"] - before["shm"]), f"/dev/shm entries left: {sorted(after['shm'] - before['shm'])}"


@pytest.mark.timeout(300)
def test_queue_lifetimes(impl):
    def cycle(i):
        q = impl.Queue(maxsize=4)
        q.put(i)
        q.put_many([i, i])
        assert q.get_many(3) == [i, i, i]
        q.shutdown()

    _no_leaks(cycle, 1000)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("named", [False, True], ids=["memfd", "named"])
def test_process_queue_lifetimes(impl, named):
    PQ = getattr(impl.module, "ProcessQueue", None)
    if PQ is None:
        pytest.skip("no ProcessQueue in this build")
    big = b"b" * (64 << 10)  # more than a quarter of the ring: a spill segment on the C core

    def cycle(i):
        q = PQ(capacity=64 << 10, named=named)
        q.put(i)
        if i % 10 == 0:
            q.put(big)
            assert q.get(timeout=10) == i and q.get(timeout=10) == big
        else:
            assert q.get(timeout=10) == i
        if i % 2:  # half closed explicitly, half left to the garbage collector
            q.close()
            q.join_thread()

    _no_leaks(cycle, 1000)


@pytest.mark.timeout(300)
def test_iterable_queue_lifetimes(impl):
    from fastq import Done

    IterableQueue = impl.process_api.IterableQueue

    def cycle(i):
        iq = IterableQueue()
        p, c = iq.get_producer(), iq.get_consumer()
        p.put(i)
        p.close()
        iq.close()
        assert list(c) == [i]
        with pytest.raises(Done):
            c.get(timeout=1)

    _no_leaks(cycle, 1000)


def _square(x):
    return x * x


@pytest.mark.timeout(300)
def test_parallel_queue_thread_backend_lifetimes(impl):
    ParallelQueue = impl.api.ParallelQueue

    def cycle(i):
        with ParallelQueue(2, backend="thread", buffer_size=4) as pq:
            pq.put(_square, i)
            pq.put("marker")
            assert pq.get(timeout=10) == i * i and pq.get(timeout=10) == "marker"
        assert not pq.is_alive()

    _no_leaks(cycle, 1000)


@pytest.mark.timeout(300)
def test_parallel_queue_process_backend_lifetimes(impl):
    ParallelQueue = impl.process_api.ParallelQueue

    def cycle(i):
        with ParallelQueue(2, backend="process", buffer_size=8) as pq:
            for k in range(5):
                pq.put(_square, k)
            assert [pq.get(timeout=30) for _ in range(5)] == [k * k for k in range(5)]
        assert not pq.is_alive()

    _no_leaks(cycle, 8, warmup=2)


@pytest.mark.timeout(300)
def test_parallel_queue_dask_backend_lifetimes(impl):
    distributed = pytest.importorskip("distributed")
    ParallelQueue = impl.api.ParallelQueue
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None, silence_logs=50) as cluster:
        with distributed.Client(cluster) as client:

            def cycle(i):
                with ParallelQueue(backend=client, buffer_size=8) as pq:
                    for k in range(4):
                        pq.put(_square, k + i)
                    assert [pq.get(timeout=30) for _ in range(4)] == [(k + i) ** 2 for k in range(4)]

            # the cluster's own threads and sockets are the cluster's: measured with it running
            _no_leaks(cycle, 5, warmup=2)


def test_a_finished_iterable_queue_ends_at_once(impl):
    """A consumer of a stream that is already over used to block for a recheck interval (50 ms)
    before raising Done: 1000 short-lived IterableQueues took 100 s."""
    from fastq import Done

    iq = impl.process_api.IterableQueue()
    p, c = iq.get_producer(), iq.get_consumer()
    p.put(1)
    p.close()
    iq.close()
    t0 = time.monotonic()
    assert list(c) == [1]
    with pytest.raises(Done):
        c.get()
    assert time.monotonic() - t0 < 0.04


def _spill_queue(impl, ctx=None):
    PQ = getattr(impl.module, "ProcessQueue", None)
    if PQ is None:
        pytest.skip("no ProcessQueue in this build")
    q = PQ(capacity=64 << 10, ctx=ctx)
    q.put(b"x" * (1 << 20))  # more than a quarter of the ring: a spill segment (C core)
    q.cancel_join_thread()  # the pure core: if nobody reads it, exit must not wait on its pipe
    return q


def test_dropping_a_queue_with_a_spill_item_queued_leaks_no_segment(impl):
    """multiprocessing.Queue's items die with its pipe; a ProcessQueue's spill segments are named
    files that outlive the ring, so whoever lets go of the queue last discards them."""
    before = _fastq_shm()
    q = _spill_queue(impl)
    q.close()
    del q
    gc.collect()
    left = _fastq_shm() - before
    for name in left:  # do not leave it behind for the next test
        os.unlink(os.path.join("/dev/shm", name))
    assert not left


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_child_holding_the_queue_keeps_its_spill_items(impl, method):
    """The parent letting go is not the last holder while a child holds the queue: the item
    stays readable there, and the child, last out, leaves no segment behind."""
    import multiprocessing as mp
    ctx = mp.get_context(method)
    before = _fastq_shm()
    box = [_spill_queue(impl, ctx)]  # emptied on both sides, so no Process object keeps a handle
    ready, go = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_read_after, args=(box, ready, go))
    p.start()
    assert ready.wait(60)
    box.clear()
    gc.collect()
    go.set()
    p.join(60)
    assert p.exitcode == 0
    assert not _fastq_shm() - before


def _read_after(box, ready, go):
    q = box.pop()
    ready.set()
    go.wait(60)
    item = q.get(timeout=10)
    assert item == b"x" * (1 << 20)
    q.put(b"y" * (1 << 20))  # left queued: the child lets go last
    q.cancel_join_thread()  # the pure core: its pipe would never drain
    del q
    gc.collect()


_DAEMONS_AT_EXIT = textwrap.dedent("""
    import sys, threading, fastq, fastq.pure
    ns = fastq.pure if sys.argv[1] == "python" else fastq
    q = ns.ProcessQueue(named=sys.argv[2] == "named")
    got = threading.Semaphore(0)
    def consume():  # blocked in get() at exit, holding the queue
        while True:
            q.get()
            got.release()
    def view(v):  # holds a view of a pooled segment (get(copy=False)) at exit
        threading.Event().wait()
    for _ in range(3):
        q.put(bytes(1 << 20))  # spilled: pooled segments
    threading.Thread(target=view, args=(q.get(copy=False),), daemon=True).start()
    threading.Thread(target=consume, daemon=True).start()
    for _ in range(2):
        assert got.acquire(timeout=30)
    with open("/proc/self/maps") as f:  # its files: the named ring, the pooled segments
        print("ok", *sorted({line.split("/dev/shm/")[1].split()[0] for line in f if "/dev/shm/fastq" in line}))
""")


@pytest.mark.parametrize("named", ["memfd", "named"])
def test_daemon_threads_holding_the_queue_at_exit_leave_no_files(impl, named):
    """A daemon thread inside get() at exit keeps the queue's memory mapped (unmapping would crash
    it), but the process is still its last holder: its names and segments go."""
    proc = run_python("-c", _DAEMONS_AT_EXIT, impl.name, named)
    assert proc.returncode == 0 and proc.stdout.split()[:1] == ["ok"], proc.stderr
    files = proc.stdout.split()[1:]
    if not impl.is_pure_python:
        assert len(files) >= 2 + (named == "named")  # the pooled segments (and the name) it held
    left = [name for name in files if os.path.exists(os.path.join("/dev/shm", name))]
    for name in left:
        os.unlink(os.path.join("/dev/shm", name))
    assert not left


def _exit_with_a_daemon_thread():
    threading.Thread(target=threading.Event().wait, daemon=True).start()


def _mapped_fastq_files():
    """The fastq files this process maps that still have their names."""
    with open("/proc/self/maps") as f:
        return {line.split("/dev/shm/")[1].split()[0] for line in f
                if "/dev/shm/fastq" in line and not line.rstrip().endswith("(deleted)")}


@pytest.mark.parametrize("named", [False, True], ids=["memfd", "named"])
def test_a_fork_child_exiting_with_daemon_threads_leaves_its_parents_files(impl, named):
    """The child shares its parent's open file description of the segment (and so its lock):
    going at exit without unmapping must not make it think it holds the queue last."""
    import multiprocessing as mp
    ctx = mp.get_context("fork")
    q = impl.process_api.ProcessQueue(named=named, ctx=ctx)
    for _ in range(2):
        q.put(bytes(1 << 20))  # spilled: pooled segments, mapped here
    files = _mapped_fastq_files()
    if not impl.is_pure_python:
        assert len(files) >= 1 + named
    p = ctx.Process(target=_exit_with_a_daemon_thread)
    p.start()
    p.join(60)
    assert p.exitcode == 0
    assert {name for name in files if not os.path.exists(os.path.join("/dev/shm", name))} == set()
    assert [len(q.get(timeout=5)) for _ in range(2)] == [1 << 20] * 2


_THREADS_AFTER_THE_LET_GO = textwrap.dedent("""
    import atexit, time
    atexit.register(time.sleep, 0.3)  # before multiprocessing's: runs after its finalizers
    import os, sys, threading, fastq, fastq.pure
    ns = fastq.pure if sys.argv[1] == "python" else fastq
    token = os.urandom(16)
    item = token * (1 << 16)  # 1 MiB: spilled
    def report(what):
        def run():
            try:
                print(what, what_returned(), flush=True)
            except ValueError:
                pass  # let go: the process is exiting
        return run
    if sys.argv[2] == "oneoff":  # a put waiting for room: the pool is all taken, a one-off segment next
        q = ns.ProcessQueue(maxsize=20)
        for _ in range(20):
            q.put(item)
        what_returned = lambda: q.put(item)
    elif sys.argv[2] == "feeder":  # the feeder waits for a pooled segment, its join cancelled
        q = ns.ProcessQueue()
        for _ in range(40):
            q.put(item)
        what_returned = lambda: None
    else:  # join: waits for an item nobody takes
        q = ns.ProcessQueue()
        q.put(1)
        what_returned = q.join
    q.cancel_join_thread()
    threading.Thread(target=report(sys.argv[2]), daemon=True).start()
    time.sleep(0.1)
    print("token", token.hex(), flush=True)
""")


@pytest.mark.parametrize("scenario", ["oneoff", "feeder", "join"])
def test_threads_running_after_the_let_go_at_exit_make_no_files_and_see_no_join(impl, scenario):
    """After the exit-time let-go (the mapping anonymous zeros), a daemon thread may still take the
    GIL (atexit handlers run after multiprocessing's): a put that goes on must not make a segment
    nobody will remove (a one-off, or a pool's under key 0), and a join must not return as if the
    zeros were a drained queue."""
    since = time.time() - 1
    proc = run_python("-c", _THREADS_AFTER_THE_LET_GO, impl.name, scenario)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split("\n")
    token = bytes.fromhex(next(line.split()[1] for line in lines if line.startswith("token ")))
    assert "join True" not in lines
    assert "QueueCorrupted" not in proc.stderr, proc.stderr
    left = []
    for name in os.listdir("/dev/shm"):
        path = os.path.join("/dev/shm", name)
        try:
            if not name.startswith("fastq-") or os.stat(path).st_mtime < since:
                continue
            with open(path, "rb") as f:
                ours = name.startswith("fastq-p0000000000000000") or token in f.read(1 << 17)
        except (FileNotFoundError, PermissionError):
            continue
        if ours:
            left.append(name)
            os.unlink(path)
    assert not left
