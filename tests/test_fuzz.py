"""The shared-memory ring against corrupted segments (C core, Linux).

- The libFuzzer harness tests/fuzz/shmq_fuzz.c, built without libFuzzer (-DFQ_FUZZ_REPLAY) by the
  system C compiler with ASan+UBSan when it has them, replays the regression corpus
  tests/fuzz/corpus: every input must end with a clean result or FQ_CORRUPT (QueueCorrupted), no
  crash, no sanitizer report, no endless loop. tests/fuzz/run does the fuzzing itself (clang).
- The fuzzer's findings, as ProcessQueue sees them: a READY record whose payload does not parse
  used to make get() spin forever (holding the GIL, deaf to its timeout and to Ctrl-C); a record
  naming a spill segment that does not exist raised OSError. Both now raise QueueCorrupted.
"""
import os
import pickle
import shutil
import struct
import subprocess
import sys
import time
import multiprocessing as mp
from pathlib import Path

import pytest

from fastq import Empty, QueueCorrupted

ROOT = Path(__file__).resolve().parent.parent
FUZZ = Path(__file__).resolve().parent / "fuzz"
CORPUS = FUZZ / "corpus"
LINUX = sys.platform.startswith("linux")
HEADER = 8192  # FQ_SHM_HEADER: the arena's offset (docs/design/SHM-QUEUE.md, "The segment")
REC_HDR = 32  # FQ_REC_HDR: a record's payload follows its header

pytestmark = [pytest.mark.timeout(180), pytest.mark.skipif(not LINUX, reason="the C ring is Linux first")]


def _compiler():
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    return None


def _build_replay(tmp_path):
    cc = _compiler()
    if cc is None:
        pytest.skip("no C compiler to build the fuzz harness's replay")
    include = ROOT / "src" / "fastq" / "_c"
    if not (include / "shmq.h").exists():
        pytest.skip("the C sources (src/fastq/_c) are not here")
    out = tmp_path / "shmq_replay"
    base = [cc, "-std=gnu11", "-g", "-O1", "-DFQ_FUZZ_REPLAY", f"-I{include}", str(FUZZ / "shmq_fuzz.c"), "-o", str(out)]
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    sanitized = base[:1] + ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"] + base[1:]
    for cmd in (sanitized, base):
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if r.returncode == 0:
            return out, cmd is sanitized
    pytest.fail(f"the fuzz harness does not compile:\n{r.stderr}")


def test_corpus_replays_clean(tmp_path):
    files = sorted(p for p in CORPUS.iterdir() if p.is_file())
    assert len(files) >= 10, "the regression corpus is missing"
    replay, sanitized = _build_replay(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0"
    env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1"
    r = subprocess.run([str(replay)] + [str(f) for f in files], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, f"replay failed ({'ASan+UBSan' if sanitized else 'plain'} build):\n{r.stdout}\n{r.stderr[-4000:]}"
    assert f"{len(files)} inputs ran clean" in r.stdout


# --- the findings, through ProcessQueue ---------------------------------------------------------------


@pytest.fixture
def PQ(impl):
    if impl.is_pure_python:
        pytest.skip("corruption handling is the C ring's")
    cls = getattr(impl.module, "ProcessQueue", None)
    if cls is None or not hasattr(cls, "_segment_view"):
        pytest.skip("no C ProcessQueue here")
    return cls


def _get_in_child(q, conn):
    """get(timeout=1) in a child: a regression spins forever with the GIL held, so the parent bounds it."""
    try:
        q.get(timeout=1)
        conn.send("an item")
    except QueueCorrupted:
        conn.send("QueueCorrupted")
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        conn.send(f"{type(exc).__name__}: {exc}")


def _bounded_get(q):
    ctx = mp.get_context("fork")
    r, w = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_get_in_child, args=(q, w), daemon=True)
    p.start()
    try:
        assert r.poll(20), "get() did not return (it spins on the bad record)"
        return r.recv()
    finally:
        p.kill()
        p.join()


@pytest.mark.parametrize("field, value", [(0, 5000), (0, 3), (4, 9), (8, 1 << 40)],
                         ids=["nbufs-over-max", "nbufs-past-len", "unknown-kind", "main-len-past-len"])
def test_unparseable_payload_raises_queue_corrupted_not_a_spin(PQ, field, value):
    q = PQ()
    q.put(("hello", 1))
    q.put("next")
    view = q._segment_view()
    fmt = "<Q" if field == 8 else "<I"
    struct.pack_into(fmt, view, HEADER + REC_HDR + field, value)  # the first record's payload header
    view.release()
    assert _bounded_get(q) == "QueueCorrupted"  # once, and the record is taken out...
    assert q.get(timeout=5) == "next"  # ...so the items behind it flow


def _spill_names():
    return {n for n in os.listdir("/dev/shm") if n.startswith("fastq-") and not n.startswith("fastq-q-")}


def test_missing_spill_segment_raises_queue_corrupted_and_the_queue_goes_on(PQ):
    writer = PQ(capacity=64 << 10, named=True)
    before = _spill_names()
    writer.put(b"s" * (1 << 20))  # larger than a quarter of the ring: a (pooled) spill segment
    writer.put(b"next")
    new = _spill_names() - before
    assert len(new) == 1
    os.unlink(os.path.join("/dev/shm", new.pop()))
    # a handle that has not mapped it yet (the writer's own keeps its mapping, and would deliver it)
    q = pickle.loads(pickle.dumps(writer))
    with pytest.raises(QueueCorrupted):
        q.get(timeout=5)
    assert q.get(timeout=5) == b"next"  # the bad record was consumed; the rest flows
    with pytest.raises(Empty):
        q.get_nowait()
