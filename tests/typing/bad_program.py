"""Wrong uses of fastq: `mypy --strict` must flag exactly the lines marked `# E: <error code>`,
with those codes, and nothing else (tests/typing/check.py compares). Never run."""
from __future__ import annotations

import fastq
import fastq.pure


def wrong_item_types() -> None:
    q: fastq.Queue[int] = fastq.Queue()
    q.put("x")  # E: arg-type
    q.put_many(["x"])  # E: list-item
    s: str = q.get()  # E: assignment
    pq: fastq.ProcessQueue[bytes] = fastq.ProcessQueue()
    pq.put(1)  # E: arg-type
    rb: fastq.ReorderBuffer[int] = fastq.ReorderBuffer(8)
    rb.put(rb.reserve(), "x")  # E: arg-type
    cq: fastq.ClosableQueue[int] = fastq.ClosableQueue()
    for item in cq:
        item.upper()  # E: attr-defined
    iq: fastq.IterableQueue[int] = fastq.IterableQueue()
    iq.get_producer().put("x")  # E: arg-type
    lifo: fastq.LifoQueue[str] = fastq.LifoQueue()
    n: int = lifo.get()  # E: assignment
    sq: fastq.SimpleQueue[str] = fastq.SimpleQueue()
    sq.put(b"x")  # E: arg-type
    fastq.StoppableWorker(len, lifo, cq)  # E: arg-type
    twin: fastq.pure.ProcessQueue[bytes] = fastq.pure.ProcessQueue()
    twin.put("x")  # E: arg-type
    assert s and n


def wrong_argument_types() -> None:
    fastq.Queue(maxsize="big")  # E: arg-type
    fastq.ProcessQueue(capacity="1M")  # E: arg-type
    fastq.ReorderBuffer(window=None)  # E: arg-type
    q: fastq.Queue[int] = fastq.Queue()
    q.get(timeout="soon")  # E: arg-type
    q.get_many(max_items="all")  # E: arg-type
    fastq.ParallelQueue(worker_count="4")  # E: arg-type
    fastq.IterableQueue(capacity="1M")  # E: arg-type
    fastq.ClosableQueue(maxsize=None)  # E: arg-type


def misspelt_names() -> None:
    fastq.Queu()  # E: attr-defined
    fastq.pure.ClosableQeue()  # E: attr-defined


def square(x: int) -> int:
    return x * x


def wrong_map() -> None:
    with fastq.ParallelQueue(2, backend="thread") as pq:
        names: list[str] = list(pq.map(square, [1, 2]))  # E: arg-type
        pq.map(square, ["a"])  # E: arg-type
    single = fastq.ParallelSingleTaskQueue(square)
    text: str = single.get()  # E: assignment
    assert names and text
