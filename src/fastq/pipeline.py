"""Pipeline helpers: multiplex (one queue to n) and merge (n queues to one).

They take any object with get() and return ClosableQueues fed by daemon threads. A stream ends
when its source raises ShutDown (Closed included) or Done, and the end propagates: the outputs
are closed. A pump also stops when its output is closed under it. `maxsize=` bounds every
output; with multiplex a slow branch then holds back the others (back-pressure). A source with
task_done() gets it for every item forwarded, so joining the source still works.

The logic lives once, in _multiplex and _merge, which take the ClosableQueue class to build;
multiplex and merge here build fastq.ClosableQueue, fastq.pure.pipeline's the pure one.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from .closable import ClosableQueue, _Closable
from .errors import Done, ShutDown

_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)
_Q = TypeVar("_Q", bound=_Closable[Any])

_END = (ShutDown, Done)


class SupportsGet(Protocol[_T_co]):
    """What the pipeline helpers read from: any object with get() (a queue, an IterableQueue
    consumer, ...); task_done() is called too where it exists."""

    def get(self) -> _T_co: ...


def _pump(source: SupportsGet[_T], put: Callable[[_T], object]) -> None:
    """Forward items from source through put() until either end stops."""
    task_done = getattr(source, "task_done", None)
    while True:
        try:
            item = source.get()
        except _END:
            return
        try:
            put(item)
        except ShutDown:  # the output was closed under us
            return
        finally:
            if task_done is not None:
                try:
                    task_done()
                except ValueError:  # a source whose task count does not track gets
                    task_done = None


def _start(target: Callable[..., object], *args: Any) -> None:
    threading.Thread(target=target, args=args, daemon=True, name="fastq-pipeline").start()


def _multiplex(queue_class: Callable[[int], _Q], n: int, q: SupportsGet[Any], maxsize: int) -> list[_Q]:
    outs = [queue_class(maxsize) for _ in range(n)]

    def broadcast(item: object) -> None:
        for out in outs:
            out.put(item)

    def run() -> None:
        try:
            _pump(q, broadcast)
        finally:
            for out in outs:
                out.close()

    _start(run)
    return outs


def _merge(queue_class: Callable[[int], _Q], qs: tuple[SupportsGet[Any], ...], maxsize: int) -> _Q:
    out = queue_class(maxsize)
    left = [len(qs)]
    lock = threading.Lock()

    def run(source: SupportsGet[Any]) -> None:
        try:
            _pump(source, out.put)
        finally:
            with lock:
                left[0] -= 1
                last = left[0] == 0
            if last:
                out.close()

    for source in qs:
        _start(run, source)
    if not qs:
        out.close()
    return out


def multiplex(n: int, q: SupportsGet[_T], maxsize: int = 0) -> list[ClosableQueue[_T]]:
    """Return n ClosableQueues that each receive every item of q, in q's order."""
    return _multiplex(ClosableQueue, n, q, maxsize)


def merge(*qs: SupportsGet[_T], maxsize: int = 0) -> ClosableQueue[_T]:
    """Return one ClosableQueue that receives the items of every q (each source's order kept);
    it is closed once every source has ended."""
    return _merge(ClosableQueue, qs, maxsize)


__all__ = ["multiplex", "merge"]
