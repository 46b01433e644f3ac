"""SIGKILL torture of fastq's cross-process queues (C core, Linux, fork).

    python -m tests.torture                      # 1000 kills (the full run)
    python -m tests.torture --kills 60 --seconds 30 --seed 7 --json figures.json
    python -m tests.torture --scenarios pq,iq    # a subset: pq (ProcessQueue), iq (IterableQueue),
                                                 # par (ParallelQueue, process backend)

The run is a sequence of rounds, taking the scenarios in turn. Each round starts a fresh queue and
its processes, kills some of them with SIGKILL at random moments while the others keep going, starts
replacements, then winds down gracefully and checks what arrived:

- pq: producer and consumer processes on one ProcessQueue (bounded by item count and by ring
  bytes; messages of 0 B to 2x the ring, so some take the spill path; bytes, bytearray and pickled
  tuples; put and put_many, get and get_many). Producers and consumers are both victims; victims
  are reaped late (zombies count as dead).
- iq: the same on an IterableQueue: producer endpoints in producer processes, consumers iterating
  until Done. Killed producers never close: the consumers must still see Done once the survivors
  have closed and the IterableQueue is closed.
- par: a ParallelQueue (process backend) whose worker processes are killed while the parent puts
  tasks and gets results, or (every other round, about) while it runs map() over lists, whose
  short tasks travel in groups.

What is checked (any failure is a violation; the exit status is 1 if there was one):
- untorn: every message carries a crc32 of its payload, checked by the consumer;
- exactly once: no (producer, sequence number) arrives twice;
- per-producer FIFO per consumer: each consumer sees each producer's numbers strictly increasing;
- nothing lost but what a kill may lose: every message whose put() returned arrives, except at most
  the ones each killed consumer held (its get_many batch); a killed producer's message in flight may
  arrive or not, nothing beyond it may arrive;
- ParallelQueue: results in submission order, each the right one, or WorkerDied for the task a
  killed worker ran (at most one per kill: the tasks queued behind it run elsewhere); a map() yields its results in order until a
  WorkerDied ends it (at most one per kill); the stream goes on after every kill;
- nothing hangs: every wait is bounded (STALL seconds without a delivery while producers and
  consumers live, WAIT seconds for a graceful exit); surviving processes exit cleanly;
- the queue still works after the round (a put and a get in the parent), and is empty;
- /dev/shm: no spill segment outlives the round's queue (whoever skips a killed producer's record,
  or releases a killed consumer's, unlinks the one-off segment it names; the last holder removes the
  pooled ones).
"""
import argparse
import gc
import json
import mmap
import multiprocessing
import os
import random
import signal
import struct
import sys
import time
import traceback
import zlib

STALL = 10.0  # seconds without any delivery while producers and consumers live: a hang
WAIT = 30.0  # seconds for a graceful exit, a join, a final drain
GAP = 0.03  # pauses between two kills: mostly up to GAP seconds, one in five up to LONG_GAP
LONG_GAP = 0.3
KILLS_PER_ROUND = (15, 40)
REC_CAP = 1 << 17  # log records per consumer incarnation
HDR = struct.Struct("<IIQ")  # a message: producer index, crc32 of the payload, sequence number
REC = struct.Struct("<IIQ")  # a consumer's log record: producer index, checksum ok, sequence number
SCENARIOS = ("pq", "iq", "par")
TOKEN = os.urandom(8)  # starts every message of this run: tells our spill segments from others' in /dev/shm


def _gap(rng):
    return rng.uniform(0.0, GAP if rng.random() < 0.8 else LONG_GAP)


def _ctx():
    return multiprocessing.get_context("fork")


# ---- messages -------------------------------------------------------------------------------------


def _message(rng, idx, seq, capacity):
    r = rng.random()
    if r < 0.85:
        n = rng.randrange(0, 1024)
    elif r < 0.98:
        n = rng.randrange(1024, capacity // 8)
    else:
        n = rng.randrange(capacity // 4, 2 * capacity)  # larger than a quarter of the ring: a spill segment
    payload = rng.randbytes(n)
    raw = TOKEN + HDR.pack(idx, zlib.crc32(payload), seq) + payload
    kind = rng.randrange(3)
    if kind == 0:
        return raw
    if kind == 1:
        return bytearray(raw)
    return ("pickled", raw)


def _decode(msg):
    """(producer index, sequence number, checksum ok)."""
    if type(msg) is tuple:
        raw = msg[1]
    else:
        raw = msg
    if raw[:len(TOKEN)] != TOKEN:
        raise ValueError("a message from outside this torture run")
    idx, crc, seq = HDR.unpack_from(raw, len(TOKEN))
    return idx, seq, zlib.crc32(memoryview(raw)[len(TOKEN) + HDR.size:]) == crc


# ---- shared memory of one round ---------------------------------------------------------------------


class Board:
    """Anonymous shared memory (inherited by fork): flags, producer progress, consumer logs."""

    # flags: 0 stop producers, 1 stop consumers
    def __init__(self, producers, consumers):
        self.flags_map = mmap.mmap(-1, 4096)
        self.flags = memoryview(self.flags_map).cast("Q")
        # per producer: done (puts returned), upto (done + the batch being put), ready
        self.prog_map = mmap.mmap(-1, max(4096, 24 * producers))
        self.prog = memoryview(self.prog_map).cast("Q")
        self.region = 8 + REC.size * REC_CAP
        self.log_map = mmap.mmap(-1, self.region * consumers)
        self.counts = [0] * consumers

    def count(self, cid):
        return struct.unpack_from("<Q", self.log_map, cid * self.region)[0]

    def records(self, cid):
        n = self.count(cid)
        start = cid * self.region + 8
        return REC.iter_unpack(self.log_map[start:start + n * REC.size])

    def close(self):
        self.flags.release()
        self.prog.release()
        for m in (self.flags_map, self.prog_map, self.log_map):
            m.close()


def _child(target, *args):
    """Run a child's body; an unexpected exception prints and exits 3 (the parent sees it)."""
    try:
        target(*args)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(3)
    os._exit(0)


def _producer_body(put, put_many, board, idx, seed, capacity):
    from fastq import Full

    rng = random.Random(seed)
    prog, flags = board.prog, board.flags
    seq = 0
    while not flags[0]:
        k = 1 if rng.random() < 0.8 else rng.randint(2, 5)
        batch = [_message(rng, idx, seq + j, capacity) for j in range(k)]
        prog[3 * idx + 1] = seq + k  # upto: what may arrive if we die now
        while batch:
            try:
                if len(batch) == 1:
                    put(batch[0], timeout=0.5)
                    inserted = 1
                else:
                    put_many(batch, timeout=0.5)
                    inserted = len(batch)
            except Full as exc:
                inserted = getattr(exc, "inserted", 0)
                if flags[0] and not inserted:
                    prog[3 * idx + 1] = seq  # stopping: nothing more is on its way
                    return
            del batch[:inserted]
            seq += inserted
            prog[3 * idx] = seq  # done: these must arrive
    prog[3 * idx + 1] = seq


def _pq_producer(q, board, idx, seed, capacity):
    _producer_body(q.put, q.put_many, board, idx, seed, capacity)


def _sigkill(p):
    """SIGKILL a child; False if it had exited already and multiprocessing reaped it (starting
    another Process reaps finished children), so there was nothing left to kill."""
    try:
        os.kill(p.pid, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False


def _iq_producer(producer, board, idx, seed, capacity):
    producer.put_many([])  # take over the registration from the parent (IterableQueue: first use)
    board.prog[3 * idx + 2] = 1  # ready: killable from now on
    _producer_body(producer.put, producer.put_many, board, idx, seed, capacity)
    producer.close()


def _log(board, cid, items, n):
    base = cid * board.region
    log_map = board.log_map
    for m in items:
        if n >= REC_CAP:
            return n
        idx, seq, ok = _decode(m)
        REC.pack_into(log_map, base + 8 + n * REC.size, idx, ok, seq)
        n += 1
        struct.pack_into("<Q", log_map, base, n)  # after the record: a kill loses at most this item
    return n


def _pq_consumer(q, board, cid, batch):
    from fastq import Empty

    n = 0
    while n < REC_CAP:
        stopping = board.flags[1]
        try:
            items = q.get_many(batch, timeout=0.2) if batch > 1 else [q.get(timeout=0.2)]
        except Empty:
            if stopping:
                return  # producers are gone and the queue is drained
            continue
        n = _log(board, cid, items, n)
    while not board.flags[1]:  # log full: stop taking
        time.sleep(0.05)


def _iq_consumer(consumer, board, cid, batch):
    from fastq import Done, Empty

    n = 0
    while n < REC_CAP:
        try:
            items = consumer.get_many(batch, timeout=0.2) if batch > 1 else [consumer.get(timeout=0.2)]
        except Empty:
            continue
        except Done:
            return
        n = _log(board, cid, items, n)
    while not board.flags[1]:
        time.sleep(0.05)


# ---- figures ------------------------------------------------------------------------------------------


class Figures:
    def __init__(self):
        self.rounds = {s: 0 for s in SCENARIOS}
        self.kills = {"producer": 0, "consumer": 0, "worker": 0}
        self.delivered = 0
        self.lost_to_consumer_kills = 0
        self.lost_allowed = 0
        self.in_flight_arrived = 0
        self.in_flight_lost = 0
        self.tasks = 0
        self.worker_died = 0
        self.max_stall = 0.0
        self.spill_leaks = 0
        self.processes = 0
        self.violations = []
        self.elapsed = 0.0

    @property
    def total_kills(self):
        return sum(self.kills.values())

    def as_dict(self):
        return {
            "rounds": self.rounds,
            "kills": self.kills,
            "total_kills": self.total_kills,
            "processes_started": self.processes,
            "messages_delivered": self.delivered,
            "messages_lost_to_consumer_kills": self.lost_to_consumer_kills,
            "loss_allowed_by_consumer_kills": self.lost_allowed,
            "killed_producers_in_flight_arrived": self.in_flight_arrived,
            "killed_producers_in_flight_lost": self.in_flight_lost,
            "parallel_tasks": self.tasks,
            "parallel_worker_died": self.worker_died,
            "max_stall_s": round(self.max_stall, 3),
            "spill_segments_leaked": self.spill_leaks,
            "violations": self.violations,
            "elapsed_s": round(self.elapsed, 1),
        }

    def report(self):
        d = self.as_dict()
        lines = [f"{k}: {v}" for k, v in d.items() if k != "violations"]
        lines.append(f"violations: {len(self.violations)}")
        lines += [f"  - {v}" for v in self.violations[:20]]
        return "\n".join(lines)


class Violation(Exception):
    pass


def _spill_names():
    try:
        return {n for n in os.listdir("/dev/shm") if n.startswith("fastq-") and not n.startswith("fastq-q-")}
    except OSError:
        return set()


def _ours(name):
    """Whether a spill segment holds one of this run's messages (other processes on the machine
    may have segments of their own)."""
    try:
        with open(os.path.join("/dev/shm", name), "rb") as f:
            return TOKEN in f.read(4096)
    except OSError:
        return False


# ---- the stream scenarios (pq, iq) --------------------------------------------------------------------


class StreamRound:
    def __init__(self, kind, rng, kills, figures, log):
        import fastq

        self.kind = kind
        self.rng = rng
        self.kills = kills
        self.fig = figures
        self.log = log
        self.ctx = _ctx()
        self.capacity = rng.choice([64 << 10, 256 << 10, 1 << 20])
        self.maxsize = rng.choice([4, 16, 64, 1024])
        self.n_producers = rng.choice([1, 2, 3])
        self.n_consumers = rng.choice([1, 2, 3])
        self.board = Board(self.n_producers + kills + 1, self.n_consumers + kills + 1)
        if kind == "pq":
            self.q = fastq.ProcessQueue(self.maxsize, capacity=self.capacity)
            self.iq = None
        else:
            self.iq = fastq.IterableQueue(self.maxsize, capacity=self.capacity)
            self.q = self.iq._queue
        self.producers = {}  # idx -> Process
        self.consumers = {}  # cid -> (Process, batch)
        self.killed_producers = set()
        self.killed_consumers = {}  # cid -> batch
        self.zombies = []  # killed, not reaped yet
        self.next_idx = 0
        self.next_cid = 0

    def start_producer(self):
        idx = self.next_idx
        self.next_idx += 1
        seed = self.rng.randrange(2**32)
        if self.kind == "pq":
            args = (_pq_producer, self.q, self.board, idx, seed, self.capacity)
        else:
            args = (_iq_producer, self.iq.get_producer(), self.board, idx, seed, self.capacity)
        p = self.ctx.Process(target=_child, args=args, daemon=True)
        p.start()
        self.fig.processes += 1
        self.producers[idx] = p

    def start_consumer(self):
        cid = self.next_cid
        self.next_cid += 1
        batch = self.rng.choice([1, 1, 2, 4])
        endpoint = self.q if self.kind == "pq" else self.iq.get_consumer()
        target = _pq_consumer if self.kind == "pq" else _iq_consumer
        p = self.ctx.Process(target=_child, args=(target, endpoint, self.board, cid, batch), daemon=True)
        p.start()
        self.fig.processes += 1
        self.consumers[cid] = (p, batch)

    def delivered(self):
        return sum(self.board.count(cid) for cid in range(self.next_cid))

    def killable_producers(self):
        if self.kind == "pq":
            return list(self.producers)
        return [i for i in self.producers if self.board.prog[3 * i + 2]]  # adopted its registration

    def kill_one(self):
        rng = self.rng
        producers = self.killable_producers()
        if producers and (not self.consumers or rng.random() < 0.5):
            idx = rng.choice(producers)
            p = self.producers.pop(idx)
            if not _sigkill(p):
                return False  # it had finished its share (its messages are checked with the rest)
            self.killed_producers.add(idx)
            self.fig.kills["producer"] += 1
            victim = p
        elif self.consumers:
            cid = rng.choice(list(self.consumers))
            p, batch = self.consumers.pop(cid)
            if not _sigkill(p):
                return False  # it had finished: what it took is on the board
            self.killed_consumers[cid] = batch
            self.fig.kills["consumer"] += 1
            victim = p
        else:
            return False
        self.zombies.append(victim)
        if rng.random() < 0.5:  # reap some victims at once, leave others zombies for a while
            for z in self.zombies:
                z.join(WAIT)
            self.zombies.clear()
        return True

    def run(self):
        try:
            self._run()
        finally:
            for p in list(self.producers.values()) + [p for p, _ in self.consumers.values()] + self.zombies:
                if p.is_alive():
                    p.kill()
                p.join(WAIT)
            self.board.close()

    def _run(self):
        rng = self.rng
        shm0 = _spill_names()
        for _ in range(self.n_producers):
            self.start_producer()
        for _ in range(self.n_consumers):
            self.start_consumer()
        last, last_t = self.delivered(), time.monotonic()
        done_kills = 0
        while done_kills < self.kills:
            time.sleep(_gap(rng))
            now = time.monotonic()
            n = self.delivered()
            if n != last:
                self.fig.max_stall = max(self.fig.max_stall, now - last_t)
                last, last_t = n, now
            elif now - last_t > STALL:
                raise Violation(f"{self.kind}: no message delivered for {now - last_t:.1f}s with "
                                f"{len(self.producers)} producers and {len(self.consumers)} consumers alive")
            if self.kill_one():  # (iq: nobody to kill while producers still adopt their registration)
                done_kills += 1
            # replacements: usually at once, sometimes a kill later
            while len(self.producers) < self.n_producers and rng.random() < 0.8:
                self.start_producer()
            while len(self.consumers) < self.n_consumers and rng.random() < 0.8:
                self.start_consumer()
        if not self.consumers:
            self.start_consumer()
        self.wind_down()
        self.verify()
        for z in self.zombies:
            z.join(WAIT)
        self.zombies.clear()
        # a live queue keeps its pooled segments: what must not outlive the round is checked once
        # the queue is gone (its last holder, this process, removes what is left)
        self.q = self.iq = None
        gc.collect()
        time.sleep(0.05)
        leaked = _spill_names() - shm0
        if leaked:
            time.sleep(0.5)  # another process's segments come and go: look twice
            leaked = {name for name in leaked & _spill_names() if _ours(name)}
        self.fig.spill_leaks += len(leaked)
        for name in leaked:  # clean up, then report
            try:
                os.unlink(os.path.join("/dev/shm", name))
            except OSError:
                pass
        if leaked:
            raise Violation(f"{self.kind}: {len(leaked)} spill segments left in /dev/shm by the round's "
                            f"killed processes")

    def wind_down(self):
        board = self.board
        board.flags[0] = 1  # producers: finish the current put and stop
        deadline = time.monotonic() + WAIT
        for idx, p in self.producers.items():
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                raise Violation(f"{self.kind}: producer {idx} did not stop within {WAIT}s (hang)")
            if p.exitcode != 0:
                raise Violation(f"{self.kind}: producer {idx} exited with {p.exitcode}")
        if self.iq is not None:
            self.iq.close()  # consumers see Done once drained: survivors closed, the killed are dead
        board.flags[1] = 1  # (pq) consumers: drain, then stop
        deadline = time.monotonic() + WAIT
        for cid, (p, _) in self.consumers.items():
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                raise Violation(f"{self.kind}: consumer {cid} did not finish within {WAIT}s (hang; "
                                f"qsize {self.q.qsize()})")
            if p.exitcode != 0:
                raise Violation(f"{self.kind}: consumer {cid} exited with {p.exitcode}")
        # the parent: the queue is empty (a dead writer's record is skipped within a slice)
        from fastq import Done, Empty

        leftovers = []
        t0 = time.monotonic()
        while True:
            try:
                leftovers.append(self.q.get(timeout=0.5))
            except Empty:
                break
            if time.monotonic() - t0 > WAIT:
                raise Violation(f"{self.kind}: the final drain did not end")
        if leftovers:
            raise Violation(f"{self.kind}: {len(leftovers)} messages left after the consumers finished")
        if self.iq is not None:
            try:
                self.iq.get_consumer().get(timeout=WAIT)
                raise Violation("iq: an item after the stream ended")
            except Done:
                pass
        probe = b"still works"
        self.q.put(probe, timeout=WAIT)
        if self.q.get(timeout=WAIT) != probe:
            raise Violation(f"{self.kind}: the queue does not work after the round")
        if self.q.qsize() != 0:
            raise Violation(f"{self.kind}: qsize() {self.q.qsize()} after the round")

    def verify(self):
        board = self.board
        seen = {}  # idx -> set of seqs
        for cid in range(self.next_cid):
            last = {}
            for idx, ok, seq in board.records(cid):
                if not ok:
                    raise Violation(f"{self.kind}: torn message: producer {idx} seq {seq} (consumer {cid})")
                if idx >= self.next_idx:
                    raise Violation(f"{self.kind}: a message from no producer ({idx})")
                if seq <= last.get(idx, -1):
                    raise Violation(f"{self.kind}: consumer {cid} got producer {idx}'s seq {seq} after "
                                    f"{last[idx]} (per-producer FIFO)")
                last[idx] = seq
                s = seen.setdefault(idx, set())
                if seq in s:
                    raise Violation(f"{self.kind}: producer {idx} seq {seq} arrived twice")
                s.add(seq)
        lost = 0
        delivered = 0
        for idx in range(self.next_idx):
            done, upto = board.prog[3 * idx], board.prog[3 * idx + 1]
            got = seen.get(idx, set())
            delivered += len(got)
            beyond = [s for s in got if s >= max(done, upto)]
            if beyond:
                raise Violation(f"{self.kind}: producer {idx}: seqs {sorted(beyond)[:5]} arrived, "
                                f"never put (done {done}, upto {upto})")
            missing = done - sum(1 for s in got if s < done)
            lost += missing
            if idx in self.killed_producers:
                arrived = sum(1 for s in got if s >= done)
                self.fig.in_flight_arrived += arrived
                self.fig.in_flight_lost += max(0, upto - done) - arrived
            elif upto != done:
                raise Violation(f"{self.kind}: producer {idx} stopped with a put in flight")
        allowed = sum(self.killed_consumers.values())
        if lost > allowed:
            raise Violation(f"{self.kind}: {lost} messages lost, but the {len(self.killed_consumers)} killed "
                            f"consumers held at most {allowed}")
        self.fig.delivered += delivered
        self.fig.lost_to_consumer_kills += lost
        self.fig.lost_allowed += allowed
        self.log(f"{self.kind}: {self.kills} kills, {self.next_idx} producers, {self.next_cid} consumers, "
                 f"maxsize {self.maxsize}, capacity {self.capacity >> 10} KiB: {delivered} delivered, "
                 f"{lost} lost (<= {allowed})")


# ---- ParallelQueue -------------------------------------------------------------------------------------


def _task(i, seed, size, pause):
    """Runs in a worker: a result with its own checksum."""
    if pause:
        time.sleep(pause)
    payload = random.Random(seed).randbytes(size)
    return i, zlib.crc32(payload), payload


def _map_task(task):
    return _task(*task)


def _worker_pids(pq):
    """The pool's live workers (children of its forker, or of this process), as the pool knows them."""
    return pq._backend.pids()


class ParallelRound:
    def __init__(self, rng, kills, figures, log):
        self.rng = rng
        self.kills = kills
        self.fig = figures
        self.log = log

    def run(self):
        import fastq
        from fastq import Empty, WorkerDied

        rng = self.rng
        count = rng.choice([1, 2, 3])
        window = rng.choice([8, 32, 128])
        use_map = rng.random() < 0.5
        pq = fastq.ParallelQueue(count, buffer_size=window)
        try:
            if use_map:
                self._maps(pq, count, window)
                return
            next_put = next_get = died = 0
            done_kills = 0
            next_kill = time.monotonic() + _gap(rng)
            expected = {}
            last_t = time.monotonic()
            while done_kills < self.kills or next_get < next_put:
                while done_kills < self.kills and next_put - next_get < window:
                    r = rng.random()
                    size = rng.randrange(0, 512) if r < 0.9 else rng.randrange(512, 1 << 19)
                    seed = rng.randrange(2**32)
                    pause = rng.choice([0, 0, 0, 0.0005, 0.002])
                    try:
                        pq.put(_task, next_put, seed, size, pause, block=False)
                    except fastq.Full:
                        break
                    expected[next_put] = (seed, size)
                    next_put += 1
                if next_get < next_put:
                    try:
                        result = pq.get(timeout=STALL)
                    except WorkerDied:
                        died += 1
                    except Empty:
                        raise Violation(f"par: no result for task {next_get} within {STALL}s (hang)")
                    else:
                        i, crc, payload = result
                        seed, size = expected[next_get]
                        if i != next_get:
                            raise Violation(f"par: got task {i}'s result in task {next_get}'s place")
                        if zlib.crc32(payload) != crc or len(payload) != size:
                            raise Violation(f"par: task {i}'s result is torn")
                    del expected[next_get]
                    next_get += 1
                    now = time.monotonic()
                    self.fig.max_stall = max(self.fig.max_stall, now - last_t)
                    last_t = now
                now = time.monotonic()
                if done_kills < self.kills and now >= next_kill:
                    done_kills += self._kill_a_worker(pq)
                    next_kill = now + _gap(rng)
            if died > done_kills:
                raise Violation(f"par: {died} WorkerDied for {done_kills} kills (one task each at most)")
            # the pool still works (a task sent to the last victim before it was buried may still
            # come back as WorkerDied), then stops cleanly
            for attempt in range(3):
                pq.put(_task, next_put, 1, 10, 0)
                next_put += 1
                try:
                    if pq.get(timeout=WAIT)[0] != next_put - 1:
                        raise Violation("par: the pool does not work after the kills")
                    break
                except WorkerDied:
                    died += 1
            else:
                raise Violation("par: the pool does not work after the kills (WorkerDied)")
            if died > done_kills:
                raise Violation(f"par: {died} WorkerDied for {done_kills} kills (one task each at most)")
            self._wind_down(pq, "par", next_put, died, count + done_kills)
            self.log(f"par: {done_kills} kills, {count} workers, window {window}: {next_put} tasks, "
                     f"{died} WorkerDied (<= {done_kills})")
        finally:
            pq.stop()
            pq.join(WAIT)

    def _wind_down(self, pq, what, tasks, died, processes):
        """Stop the pool, which must stop within WAIT, and count the round's figures."""
        pq.stop()
        pq.join(WAIT)
        if pq.is_alive():
            raise Violation(f"{what}: the pool did not stop within {WAIT}s")
        self.fig.tasks += tasks
        self.fig.worker_died += died
        self.fig.processes += processes

    def _kill_a_worker(self, pq):
        """SIGKILL one of the pool's workers, if one is alive: 1 if it was killed, else 0."""
        pids = _worker_pids(pq)
        if not pids:
            return 0
        try:
            os.kill(self.rng.choice(pids), signal.SIGKILL)
        except ProcessLookupError:
            return 0
        self.fig.kills["worker"] += 1
        return 1

    def _maps(self, pq, count, window):
        """map() over lists of short and not so short tasks, grouped automatically, while workers
        die: each map yields its results in order, untorn, until a WorkerDied ends it (at most
        one per kill); the next map starts where it stopped."""
        import fastq

        rng = self.rng
        done_kills = died = tasks = 0
        next_kill = time.monotonic() + _gap(rng)
        last_t = time.monotonic()
        while done_kills < self.kills:
            n = rng.randrange(100, 3000)
            items = [(tasks + j, rng.randrange(2**32), rng.randrange(0, 512) if rng.random() < 0.97
                      else rng.randrange(512, 1 << 18), rng.choice([0, 0, 0, 0, 0, 0.0005])) for j in range(n)]
            pos = 0
            try:
                for i, crc, payload in pq.map(_map_task, items):
                    want, seed, size, _ = items[pos]
                    if i != want:
                        raise Violation(f"par/map: got task {i}'s result in task {want}'s place")
                    if zlib.crc32(payload) != crc or len(payload) != size:
                        raise Violation(f"par/map: task {i}'s result is torn")
                    pos += 1
                    now = time.monotonic()
                    self.fig.max_stall = max(self.fig.max_stall, now - last_t)
                    last_t = now
                    if done_kills < self.kills and now >= next_kill:
                        done_kills += self._kill_a_worker(pq)
                        next_kill = now + _gap(rng)
            except fastq.WorkerDied:
                died += 1
            tasks += pos
            last_t = time.monotonic()
        if died > done_kills:
            raise Violation(f"par/map: {died} maps ended by WorkerDied for {done_kills} kills")
        if list(pq.map(_map_task, [(0, 1, 10, 0)] * 50)) != [(0, zlib.crc32(random.Random(1).randbytes(10)),
                                                               random.Random(1).randbytes(10))] * 50:
            raise Violation("par/map: the pool does not work after the kills")
        self._wind_down(pq, "par/map", tasks, died, count + done_kills)
        self.log(f"par/map: {done_kills} kills, {count} workers, window {window}: {tasks} tasks, "
                 f"{died} maps ended by WorkerDied (<= {done_kills})")


# ---- driver ---------------------------------------------------------------------------------------------


def run_round(kind, seed, kills, fig, log):
    """One round; a violation is recorded with what replays it (--round KIND:SEED:KILLS)."""
    replay = f"replay: --round {kind}:{seed}:{kills}"
    try:
        if kind == "par":
            ParallelRound(random.Random(seed), kills, fig, log).run()
        else:
            StreamRound(kind, random.Random(seed), kills, fig, log).run()
    except Violation as exc:
        fig.violations.append(f"{exc} ({replay})")
        log(f"VIOLATION: {exc} ({replay})")
    except Exception as exc:
        fig.violations.append(f"{kind}: {type(exc).__name__}: {exc} ({replay})")
        log(f"ERROR ({replay}): {traceback.format_exc()}")
    fig.rounds[kind] += 1


def run(kills=1000, seconds=None, seed=None, scenarios=SCENARIOS, verbose=False, out=sys.stdout):
    """Run rounds until `kills` kills (or `seconds` elapsed). Returns Figures."""
    import fastq

    fig = Figures()
    if not sys.platform.startswith("linux") or fastq.ProcessQueue.__module__ != "fastq._shm":
        fig.violations.append("the C ProcessQueue (Linux) is required")
        return fig
    seed = random.randrange(2**32) if seed is None else seed
    rng = random.Random(seed)

    def log(line):
        if verbose:
            print(f"[{time.monotonic() - t0:7.1f}s] {line}", file=out, flush=True)

    t0 = time.monotonic()
    log(f"seed {seed}")
    i = 0
    while fig.total_kills < kills and (seconds is None or time.monotonic() - t0 < seconds):
        kind = scenarios[i % len(scenarios)]
        i += 1
        n = min(rng.randint(*KILLS_PER_ROUND), max(1, kills - fig.total_kills))
        run_round(kind, rng.randrange(2**32), n, fig, log)
    fig.elapsed = time.monotonic() - t0
    return fig


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.torture", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=1000, help="stop after this many kills (default 1000)")
    parser.add_argument("--seconds", type=float, default=None, help="stop starting rounds after this long")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated: pq,iq,par")
    parser.add_argument("--round", default=None, metavar="KIND:SEED:KILLS",
                        help="replay one round, as a violation's report names it")
    parser.add_argument("--json", default=None, help="write the figures here")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    scenarios = tuple(s for s in args.scenarios.split(",") if s)
    bad = [s for s in scenarios if s not in SCENARIOS]
    if bad or not scenarios:
        parser.error(f"unknown scenarios {bad}; choose from {','.join(SCENARIOS)}")
    if args.round:
        kind, seed, kills = args.round.split(":")
        fig = Figures()
        t0 = time.monotonic()
        run_round(kind, int(seed), int(kills), fig, lambda line: print(line, flush=True))
        fig.elapsed = time.monotonic() - t0
    else:
        fig = run(args.kills, args.seconds, args.seed, scenarios, verbose=not args.quiet)
    print(fig.report())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(fig.as_dict(), f, indent=2)
    return 1 if fig.violations else 0


if __name__ == "__main__":
    sys.exit(main())
