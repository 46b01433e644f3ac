"""The asyncio face against its rivals: one item at a time between a thread (or a process) and a
coroutine. bench/test_bench_asyncio.py times this matrix with pytest-benchmark;
`python -m fastq.bench.aio` prints it as a table with ratios.

Cases:
- thread_to_coro: a thread puts N ints, a coroutine awaits each;
- coro_to_thread: a coroutine puts N ints into a queue bounded at 64 (so it awaits room), a thread
  gets each;
- process_to_coro: a child process puts N ints, a coroutine awaits each.

Rows: fastq's queues (C and pure), janus and culsans (a sync and an async face over one queue,
threads only), asyncio.Queue fed through loop.call_soon_threadsafe, queue.Queue driven through
run_in_executor, aioprocessing's AioQueue and multiprocessing.Queue.get in run_in_executor. A row
whose library is missing is skipped and named.
"""
from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import queue
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

MAXSIZE = 64  # coro_to_thread's bound


@dataclass(frozen=True)
class Row:
    name: str
    case: str  # thread_to_coro, coro_to_thread, process_to_coro
    run: Callable[[int], float]  # run(n) -> seconds for n items; ImportError when missing
    missing: str = ""


def _timed(coro_fn: Callable[[], Any]) -> float:
    """Run coro_fn() in a fresh loop; it returns the seconds it measured itself (from starting its
    other side to the last item), so the loop's start and end are not counted."""
    return asyncio.run(coro_fn())  # type: ignore[no-any-return]


def _thread_put(put: Callable[[Any], Any], n: int) -> threading.Thread:
    def produce() -> None:
        for i in range(n):
            put(i)
    return threading.Thread(target=produce, daemon=True)


def _thread_get(get: Callable[[], Any], n: int) -> threading.Thread:
    def consume() -> None:
        for _ in range(n):
            get()
    return threading.Thread(target=consume, daemon=True)


def _join(t: threading.Thread, start: float) -> float:
    t.join()  # (its last item is through: at most the last get or put is left)
    return time.perf_counter() - start


# ---- thread -> coroutine ----

def fastq_t2c(module: str, cls: str) -> Callable[[int], float]:
    def run(n: int) -> float:
        q = getattr(importlib.import_module(module), cls)()

        async def main() -> float:
            t = _thread_put(q.put, n)
            start = time.perf_counter()
            t.start()
            get = q.async_get
            for _ in range(n):
                await get()
            return _join(t, start)
        return _timed(main)
    return run


def janus_like_t2c(module: str) -> Callable[[int], float]:
    def run(n: int) -> float:
        mod = importlib.import_module(module)

        async def main() -> float:
            q = mod.Queue()
            t = _thread_put(q.sync_q.put, n)
            start = time.perf_counter()
            t.start()
            get = q.async_q.get
            for _ in range(n):
                await get()
            elapsed = _join(t, start)
            q.close()
            await q.wait_closed()
            return elapsed
        return _timed(main)
    return run


def asyncio_queue_t2c(n: int) -> float:
    async def main() -> float:
        q: asyncio.Queue[int] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        t = _thread_put(lambda i: loop.call_soon_threadsafe(q.put_nowait, i), n)
        start = time.perf_counter()
        t.start()
        for _ in range(n):
            await q.get()
        return _join(t, start)
    return _timed(main)


# ---- coroutine -> thread ----

def fastq_c2t(module: str, cls: str) -> Callable[[int], float]:
    def run(n: int) -> float:
        q = getattr(importlib.import_module(module), cls)(MAXSIZE)

        async def main() -> float:
            t = _thread_get(q.get, n)
            start = time.perf_counter()
            t.start()
            put = q.async_put
            for i in range(n):
                await put(i)
            return _join(t, start)
        return _timed(main)
    return run


def janus_like_c2t(module: str) -> Callable[[int], float]:
    def run(n: int) -> float:
        mod = importlib.import_module(module)

        async def main() -> float:
            q = mod.Queue(MAXSIZE)
            t = _thread_get(q.sync_q.get, n)
            start = time.perf_counter()
            t.start()
            put = q.async_q.put
            for i in range(n):
                await put(i)
            elapsed = _join(t, start)
            q.close()
            await q.wait_closed()
            return elapsed
        return _timed(main)
    return run


def executor_c2t(n: int) -> float:
    async def main() -> float:
        q: queue.Queue[int] = queue.Queue(MAXSIZE)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, int)  # the executor's first thread starts outside the timing
        t = _thread_get(q.get, n)
        start = time.perf_counter()
        t.start()
        for i in range(n):
            try:
                q.put_nowait(i)
            except queue.Full:
                await loop.run_in_executor(None, q.put, i)
        return _join(t, start)
    return _timed(main)


# ---- process -> coroutine ----

def _produce(q: Any, n: int) -> None:
    for i in range(n):
        q.put(i)


def _process_case(make: Callable[[], Any], get_all: Callable[[Any, int], Any]) -> Callable[[int], float]:
    def run(n: int) -> float:
        q = make()
        ctx: Any = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        p = ctx.Process(target=_produce, args=(q, n), daemon=True)

        async def main() -> float:
            await asyncio.get_running_loop().run_in_executor(None, int)  # (the executor's first thread)
            start = time.perf_counter()
            p.start()
            await get_all(q, n)
            return time.perf_counter() - start
        elapsed = _timed(main)
        p.join()
        return elapsed
    return run


async def _async_get_all(q: Any, n: int) -> None:
    get = q.async_get
    for _ in range(n):
        await get()


async def _aioprocessing_get_all(q: Any, n: int) -> None:
    for _ in range(n):
        await q.coro_get()


async def _executor_get_all(q: Any, n: int) -> None:
    loop = asyncio.get_running_loop()
    for _ in range(n):
        await loop.run_in_executor(None, q.get)


def _fastq_process_queue(pure: bool) -> Callable[[], Any]:
    def make() -> Any:
        import fastq
        if pure:
            return importlib.import_module("fastq.pure._process").ProcessQueue()
        if fastq.IMPLEMENTATIONS["ProcessQueue"] != "c":
            raise ImportError("no C ProcessQueue in this build")
        return fastq.ProcessQueue()
    return make


def _aioprocessing_queue() -> Any:
    return importlib.import_module("aioprocessing").AioQueue()


def _mp_queue() -> Any:
    return multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn").Queue()


_NEEDS = "pip install janus culsans aioprocessing (the bench extra)"
ROWS = [
    Row("fastq.Queue (C)", "thread_to_coro", fastq_t2c("fastq._core", "Queue"), "the C core is not built"),
    Row("fastq.SimpleQueue (C)", "thread_to_coro", fastq_t2c("fastq._core", "SimpleQueue"), "the C core is not built"),
    Row("fastq.pure.Queue", "thread_to_coro", fastq_t2c("fastq.pure", "Queue")),
    Row("janus.Queue", "thread_to_coro", janus_like_t2c("janus"), _NEEDS),
    Row("culsans.Queue", "thread_to_coro", janus_like_t2c("culsans"), _NEEDS),
    Row("asyncio.Queue + call_soon_threadsafe", "thread_to_coro", asyncio_queue_t2c),
    Row("fastq.Queue (C)", "coro_to_thread", fastq_c2t("fastq._core", "Queue"), "the C core is not built"),
    Row("fastq.pure.Queue", "coro_to_thread", fastq_c2t("fastq.pure", "Queue")),
    Row("janus.Queue", "coro_to_thread", janus_like_c2t("janus"), _NEEDS),
    Row("culsans.Queue", "coro_to_thread", janus_like_c2t("culsans"), _NEEDS),
    Row("queue.Queue + run_in_executor(put)", "coro_to_thread", executor_c2t),
    Row("fastq.ProcessQueue (C)", "process_to_coro", _process_case(_fastq_process_queue(False), _async_get_all),
        "the C ProcessQueue is not built here"),
    Row("fastq.pure.ProcessQueue", "process_to_coro", _process_case(_fastq_process_queue(True), _async_get_all)),
    Row("aioprocessing.AioQueue", "process_to_coro", _process_case(_aioprocessing_queue, _aioprocessing_get_all), _NEEDS),
    Row("mp.Queue + run_in_executor(get)", "process_to_coro", _process_case(_mp_queue, _executor_get_all)),
]
CASES = {"thread_to_coro": 20_000, "coro_to_thread": 20_000, "process_to_coro": 5_000}  # items per round


def main(repeat: int = 3) -> None:
    """Print each case's table: µs per item (best of `repeat`) and the ratio to each row."""
    for case, n in CASES.items():
        print(f"\n{case}, {n:,} items per round, best of {repeat}")
        results = []
        for row in (r for r in ROWS if r.case == case):
            try:
                best = min(row.run(n) for _ in range(repeat))
            except (ImportError, AttributeError) as exc:
                print(f"  {row.name:40s} skipped: {row.missing or exc}")
                continue
            results.append((row.name, best / n * 1e6))
        fastest = results[0][1] if results else 1.0
        for name, us in results:
            print(f"  {name:40s} {us:8.2f} µs/item  {us / fastest:6.1f}x fastq's first row")


if __name__ == "__main__":
    main()
