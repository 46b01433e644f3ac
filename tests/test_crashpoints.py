"""Crash points: every store or CAS a ProcessQueue operation makes to the segment, killed (or stopped)
there, one at a time, with the invariants checked after each (docs/design/SHM-QUEUE.md, "Crash
points"). A random SIGKILL torture rarely lands inside a window a few instructions wide; this
enumerates them all.

The hooks exist only in a build with FASTQ_CRASHPOINTS (tools/sanitize builds with them, and CI runs
this file there); elsewhere the module skips. For each scenario, a forked child first runs the
operation counting its points (N), then for k = 1..N a fresh queue is set up, a child runs the
operation armed to die (SIGKILL) at point k, and the parent, as the surviving participant, checks:

- every item is delivered at most once, untorn, and each one put before is delivered unless the
  killed child was the consumer holding it (at most one lost per kill);
- counts are exact: after task_done() for what was delivered, join() returns and one more
  task_done() raises (a skewed next_seq shows here);
- progress: each item arrives within a bounded number of futex wait slices (counted by the build,
  not timed), a put after the kill goes through (no lock left behind);
- no spill segment is left in /dev/shm once the queue is dropped.

With SIGSTOP instead (the `slow` marker; CI runs a sample), the child stays stopped at point k while
the parent checks that put, get, join and qsize each return within their timeouts.
"""
import gc
import os
import pickle
import signal
import struct
import time
import zlib

import pytest

from fastq import Empty

pytestmark = [pytest.mark.timeout(900), pytest.mark.c_extension]

try:
    from fastq import _shm
except ImportError:  # no C ring here
    _shm = None

if _shm is None or _shm._crashpoints() is None:
    pytest.skip("needs a build with FASTQ_CRASHPOINTS (tools/sanitize)", allow_module_level=True)

ProcessQueue = _shm.ProcessQueue
HDR_RLOCK = 80  # docs/design/SHM-QUEUE.md, "Layout"
MAX_WAITS = 40  # futex slices a survivor may need per item (a dead writer or lock costs about one)


def _item(i, size=100):
    body = (b"%d:" % i) * (size // 4 + 1)
    body = body[:size]
    return struct.pack("<I", zlib.crc32(body)) + body


def _check(item):
    crc, body = struct.unpack("<I", item[:4])[0], item[4:]
    assert zlib.crc32(body) == crc, "a torn item was delivered"
    return int(body.split(b":", 1)[0])


def _spills():
    return {n for n in os.listdir("/dev/shm") if n.startswith("fastq-") and not n.startswith("fastq-q-")}


def _dead_pid():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


# --- scenarios: setup(q) in the parent, op(q) in the child; what the child may take or add ----------


class Scenario:
    capacity = 1 << 16
    before = 3          # items put before the operation (ids 0..before-1)
    size = 100
    consumer = False    # the op takes at most one item (it may be lost with the child)
    adds = None         # the id the op puts, if any

    def setup(self, q):
        for i in range(self.before):
            q.put(_item(i, self.size))

    def op(self, q):
        raise NotImplementedError

    def __repr__(self):
        return type(self).__name__


class Put(Scenario):
    adds = 100

    def op(self, q):
        q.put(_item(self.adds))


class PutSpill(Put):
    size = 40000  # a quarter of the ring and more: its own segment

    def op(self, q):
        q.put(_item(self.adds, self.size))


class PutSpillReuse(PutSpill):
    """The spill pool hands the put a segment an earlier item left FREE (mapped already)."""

    def setup(self, q):
        q.put(_item(500, self.size))
        _check(q.get())
        q.task_done()
        super().setup(q)


class PutSpillReclaim(PutSpill):
    """Every pool entry is held by a dead writer: the put takes one over and remakes its segment."""

    def setup(self, q):
        super().setup(q)
        at, entries, entry_size, _ = _shm._pool_layout()
        dead = _dead_pid()
        view = q._segment_view()
        for i in range(entries):  # state TAKEN (2 << 60) | a dead ident (pid, start time 0)
            struct.pack_into("<Q", view, at + i * entry_size, (2 << 60) | dead)


class PoolTrim(Scenario):
    """A getter that waits finds a pooled segment idle for long: it removes it."""
    before = 0

    def setup(self, q):
        q.put(_item(500, 40000))
        _check(q.get())
        q.task_done()
        at, _, entry_size, trim_at = _shm._pool_layout()
        view = q._segment_view()
        struct.pack_into("<q", view, trim_at, 0)  # nobody trimmed lately
        struct.pack_into("<q", view, at + 24, 0)  # entry 0: handed back long ago (used_at)

    def op(self, q):
        try:
            q.get(timeout=0.015)  # one wait, under a slice: a fixed number of points
        except Empty:
            pass


class PutPad(Put):
    capacity = 4096
    before = 0

    def setup(self, q):
        for i in range(5):  # move the cursors near the end of the arena: the next record pads
            q.put(_item(1000 + i, 600))
            q.get()
            q.task_done()
        q.put(_item(0, 100))
        self.before = 1

    def op(self, q):
        q.put(_item(self.adds, 600))


class PutSteal(Put):
    """The reserve lock is held by a dead process: the put waits a slice, steals it, repairs."""

    def setup(self, q):
        super().setup(q)
        struct.pack_into("<Q", q._segment_view(), HDR_RLOCK, _dead_pid())  # a dead owner (start time 0)


class Get(Scenario):
    consumer = True

    def op(self, q):
        _check(q.get())


class GetSpill(Get):
    size = 40000


class _OutOfBand:
    """Pickles its bytes out of band (PEP 574), as a numpy array does; unpickles as bytes."""

    def __init__(self, data):
        self.data = data

    def __reduce_ex__(self, protocol):
        return bytes, (pickle.PickleBuffer(self.data),)


class GetView(Get):
    """get(copy=False): the pooled segment is HELD while the view lives, let go when it dies."""
    size = 40000

    def setup(self, q):
        for i in range(self.before):
            q.put(_OutOfBand(_item(i, self.size)))

    def op(self, q):
        _check(q.get(copy=False))


class GetMany(Scenario):
    consumer = True
    before = 1  # get_many takes several: with one queued, at most one can be lost

    def op(self, q):
        q.get_many(5)


class TaskDone(Scenario):
    before = 1
    done_before = True  # the parent got the item; the child counts it done

    def setup(self, q):
        super().setup(q)
        _check(q.get())

    def op(self, q):
        q.task_done()


class Shutdown(Scenario):
    def op(self, q):
        q.shutdown()


class ShutdownImmediate(Scenario):
    # it takes records as a consumer does: killed between dropping one and counting it done, it
    # leaves that one unfinished, as a consumer killed between get() and task_done() does
    consumer = True

    def op(self, q):
        q.shutdown(immediate=True)


SCENARIOS = [Put(), PutSpill(), PutSpillReuse(), PutSpillReclaim(), PutPad(), PutSteal(), Get(), GetSpill(),
             GetView(), GetMany(), PoolTrim(), TaskDone(), Shutdown(), ShutdownImmediate()]


# --- the machinery ----------------------------------------------------------------------------------


def _in_child(q, scenario, arm, sig):
    """Fork a child that runs the op armed at point `arm` (0: only count); returns (pid, read fd)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            _shm._crashpoints(arm, sig)
            scenario.op(q)
            points, _ = _shm._crashpoints(0)
            os.write(w, b"%d" % points)
            os._exit(0)
        except BaseException:
            os._exit(3)
    os.close(w)
    return pid, r


def _count_points(scenario):
    q = ProcessQueue(capacity=scenario.capacity)
    scenario.setup(q)
    pid, r = _in_child(q, scenario, 0, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    out = os.read(r, 64)
    os.close(r)
    assert os.waitstatus_to_exitcode(status) == 0, f"{scenario} failed without a kill"
    q.shutdown(immediate=True)
    return int(out)


def _survivor_checks(q, scenario, k, got):
    """What the parent must find after the child died at point k (`got`: ids it took already)."""
    where = f"{scenario}, killed at point {k}"
    shut = q.is_shutdown
    immediate = isinstance(scenario, ShutdownImmediate) and shut
    expected = set(range(scenario.before)) | {99}  # 99: what _stopped_checks may put
    if scenario.adds is not None:
        expected.add(scenario.adds)
    if isinstance(scenario, TaskDone):
        expected = {99}  # the parent took the one item before the op
    _shm._crashpoints(0)  # reset the wait counter
    while True:
        try:
            item = q.get(timeout=0.15)
        except Exception:  # Empty, or ShutDown once drained
            break
        got.append(_check(item))
        _, waits = _shm._crashpoints(0)
        assert waits <= MAX_WAITS, f"{where}: an item took {waits} wait slices"
    assert len(got) == len(set(got)), f"{where}: an item was delivered twice: {got}"
    assert set(got) <= expected, f"{where}: unexpected items {set(got) - expected}"
    missing = set(range(scenario.before)) - set(got)
    if isinstance(scenario, TaskDone):
        missing = set()
    allowed = 1 if scenario.consumer else 0
    if not immediate:
        assert len(missing) <= allowed, f"{where}: items lost: {missing}"
    for _ in got:
        q.task_done()
    # the killed op may have taken an item and released it (delivered to the dead child) without
    # counting it done, or counted one done (TaskDone): at most one task_done() makes it exact
    if not q.join(timeout=0.5):
        assert scenario.consumer or isinstance(scenario, TaskDone), f"{where}: join() never returns"
        q.task_done()
        assert q.join(timeout=2.0), f"{where}: counts skewed by more than one"
    with pytest.raises(ValueError):
        q.task_done()  # exact: nothing more to count done
    if not shut:
        q.put(_item(7), timeout=5.0)  # no lock left behind
        assert _check(q.get(timeout=5.0)) == 7
        q.task_done()
        for i in range(3):  # nor a pool entry: large items still flow (through the pool or not)
            q.put(_item(8 + i, 40000), timeout=5.0)
        assert [_check(q.get(timeout=5.0)) for i in range(3)] == [8, 9, 10]
        for i in range(3):
            q.task_done()
        assert q.join(timeout=2.0), f"{where}: counts skewed after a put"


def _enumerate(scenario, sig, points=None):
    n = _count_points(scenario)
    assert n > 0, f"{scenario} passed no crash point"
    ks = range(1, n + 1) if points is None else sorted({min(n, max(1, p)) for p in points(n)})
    before = _spills()
    for k in ks:
        q = ProcessQueue(capacity=scenario.capacity)
        scenario.setup(q)
        pid, r = _in_child(q, scenario, k, sig)
        got = _stopped_checks(q, pid, scenario, k) if sig == signal.SIGSTOP else []
        _, status = os.waitpid(pid, 0)
        os.close(r)
        if sig == signal.SIGKILL:
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, \
                f"{scenario}: point {k} of {n} was not reached"
        _survivor_checks(q, scenario, k, got)
        del q
        gc.collect()
    assert _spills() - before == set(), f"{scenario}: spill segments left behind"
    return len(ks)


def _stopped_checks(q, pid, scenario, k):
    """The child is stopped (or about to be) at point k: every call of ours honours its timeout.
    Then it is killed. Returns the ids of the items our get took."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # stopped, or done (the point may follow the op's last store)
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] in "TtZ":
                break
        time.sleep(0.001)
    where = f"{scenario}, stopped at point {k}"
    got = []
    for call in (lambda: q.put(_item(99), timeout=0.2), lambda: q.get(timeout=0.2),
                 lambda: q.join(timeout=0.2), q.qsize):
        t0 = time.monotonic()
        try:
            result = call()
        except Exception:  # Full, Empty, ShutDown: in time is all that counts here
            result = None
        assert time.monotonic() - t0 < 1.5, f"{where}: a call overran its timeout"
        if isinstance(result, bytes):
            got.append(_check(result))
    os.kill(pid, signal.SIGKILL)
    return got


# --- the tests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS, ids=repr)
def test_kill_at_every_crash_point(scenario, record_property):
    enumerated = _enumerate(scenario, signal.SIGKILL)
    record_property("crash_points", enumerated)
    print(f"{scenario}: {enumerated} crash points")


def _sample(n):
    return (1, n // 2, n)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=repr)
def test_stop_at_a_sample_of_crash_points(scenario):
    _enumerate(scenario, signal.SIGSTOP, points=_sample)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS, ids=repr)
def test_stop_at_every_crash_point(scenario):
    _enumerate(scenario, signal.SIGSTOP)
