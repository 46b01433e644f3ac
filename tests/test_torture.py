"""The SIGKILL torture (tests/torture.py) in pytest: a short form in CI, the full 1000 kills under
`slow`; plus the regression tests for what it found. `python -m tests.torture` runs it by hand
with its figures (--kills, --seconds, --seed, --scenarios, --json)."""
import gc
import multiprocessing as mp
import os
import signal
import struct
import sys
import time

import pytest

import torture

LINUX = sys.platform.startswith("linux")


@pytest.fixture
def c_core(impl):
    """The torture is the C core's promise (docs/design/ARCHITECTURE.md): crash tolerance."""
    if impl.is_pure_python:
        pytest.skip("crash tolerance is the C core's promise (docs/design/ARCHITECTURE.md)")
    if not LINUX or "fork" not in mp.get_all_start_methods():
        pytest.skip("the C ProcessQueue is Linux first; the torture forks")
    import fastq

    if fastq.ProcessQueue.__module__ != "fastq._shm":
        pytest.skip("fastq.ProcessQueue is not the C ring here")
    return impl


def _check(fig):
    assert not fig.violations, fig.report()
    assert fig.total_kills > 0, fig.report()


@pytest.mark.timeout(120)
def test_torture_short(c_core):
    """A few dozen kills over the three scenarios, under ~30 s."""
    fig = torture.run(kills=45, seconds=40, seed=int(os.environ.get("FASTQ_TORTURE_SEED", "8")))
    _check(fig)
    assert all(n > 0 for n in fig.rounds.values()), fig.report()
    assert fig.delivered > 0 and fig.tasks > 0, fig.report()


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_torture_full(c_core):
    """The full run: at least 1000 kills."""
    fig = torture.run(kills=1000, seed=int(os.environ.get("FASTQ_TORTURE_SEED", "1000")))
    _check(fig)
    assert fig.total_kills >= 1000, fig.report()


# --- what the torture found ----------------------------------------------------------------------------


def _spill_names():
    return {n for n in os.listdir("/dev/shm") if n.startswith("fastq-") and not n.startswith("fastq-q-")}


def _put(q, item):
    q.put(item)


@pytest.mark.timeout(60)
def test_producer_killed_waiting_for_room_with_a_spill_item_leaks_no_segment(c_core):
    """A producer used to create its spill segment before waiting for room: killed while it
    waited, it left the segment in /dev/shm for good."""
    import fastq

    q = fastq.ProcessQueue(1, capacity=64 << 10)
    q.put(b"fills the queue")
    before = _spill_names()
    p = mp.get_context("fork").Process(target=_put, args=(q, b"x" * (1 << 20)), daemon=True)
    p.start()
    time.sleep(0.3)  # blocked in put(): the queue is full
    assert p.is_alive()
    os.kill(p.pid, signal.SIGKILL)
    p.join()
    assert q.get(timeout=5) == b"fills the queue"
    with pytest.raises(fastq.Empty):
        q.get(timeout=0.2)
    # what is left is a pooled segment (the killed put had taken its entry), which the queue reuses
    # or removes with its last holder
    assert all(name.startswith("fastq-p") for name in _spill_names() - before)
    del q
    gc.collect()
    assert not (_spill_names() - before)


def test_consumer_killed_holding_a_spill_record_leaks_no_segment(c_core):
    """A consumer killed between claiming a spill record and opening (unlinking) its segment leaves
    a READING record: its segment used to stay until a producer found the ring full, and forever if
    the queue went away first. The next release (at most a slice later) now frees both."""
    import struct

    import fastq

    q = fastq.ProcessQueue(capacity=64 << 10)
    before = _spill_names()
    q.put(b"x" * (1 << 20))  # a spill segment; its ring record is the first, at arena offset 0
    (name,) = _spill_names() - before
    view = q._segment_view()
    header = struct.unpack_from("<I", view, 12)[0]  # header_size: the arena follows the header
    dead_reader = (3 << 60) | ((1 << 22) - 1)  # READING | a pid that does not exist
    state, seq, pos, size = struct.unpack_from("<QQQI", view, header)
    assert state >> 60 == 2 and pos == 0  # READY, the first record
    struct.pack_into("<Q", view, header, dead_reader)  # claimed...
    struct.pack_into("<Q", view, 128, size)  # ...and head moved past it (head: the consumer line, offset 128)
    view.release()
    time.sleep(0.05)
    q.put(b"next")
    assert q.get(timeout=5) == b"next"  # its release walks `free` onto the dead reader's record
    # a one-off segment is unlinked then; a pooled one (this one) is finished, so the next large
    # item reuses it instead of making another
    assert name not in _spill_names() or name.startswith("fastq-p")
    q.put(b"y" * (1 << 20))
    assert q.get(timeout=5) == b"y" * (1 << 20)
    assert _spill_names() - before <= {name}
    with pytest.raises(fastq.Empty):
        q.get_nowait()
    del q
    gc.collect()
    assert not (_spill_names() - before)
