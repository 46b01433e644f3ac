"""Stream a local queue through a dask cluster and back (the old distributed "Data Streams with
Queues" recipe), on fastq's queues.

    remote_q = fastq.dask.scatter(client, input_q)       # items -> futures of data on the cluster
    inc_q = fastq.dask.map(client, inc, remote_q)        # futures -> futures of inc(x)
    result_q = fastq.dask.gather(client, inc_q)          # futures -> local values, in order

Each takes any object with get() and returns a ClosableQueue fed by a daemon thread, in order.
`maxsize=` bounds every output, so a fast source cannot flood the cluster (back-pressure). The
stream ends when its source raises ShutDown (Closed included) or Done, and the end propagates:
closing the input queue closes every stage. A task that fails raises WorkerError (with the
task's traceback, the original exception as __cause__) at the get() of gather's queue, in its
place in the stream.

`pip install fastq-queue[dask]` brings distributed; this module imports it only when used. The
logic lives once, in _scatter, _map and _gather, which take the ClosableQueue class to build (and
_RaisesFailures for gather's); fastq.pure.dask holds the same three over the pure ClosableQueue.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ._failure import _Failure
from .closable import ClosableQueue, _Closable
from .pipeline import SupportsGet, _pump, _start

_Q = TypeVar("_Q", bound=_Closable[Any])


class _RaisesFailures(_Closable[Any]):
    """gather's output queue: a failed task's WorkerError raises at its get()."""

    __slots__ = ()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        item = super().get(block, timeout)
        if type(item) is _Failure:
            item.raise_()
        return item


class _GatherQueue(_RaisesFailures, ClosableQueue[Any]):
    pass


def _stage(source: SupportsGet[Any], transform: Callable[[Any], Any], out: _Q) -> _Q:
    def run() -> None:
        try:
            _pump(source, lambda item: out.put(transform(item)))
        finally:
            out.close()

    _start(run)
    return out


def _scatter(queue_class: Callable[[int], _Q], client: Any, q: SupportsGet[Any], maxsize: int) -> _Q:
    # hash=False: equal items get their own keys, so releasing one stream's data never cancels
    # another's (dask's "lost dependencies")
    return _stage(q, lambda item: client.scatter(item, hash=False), queue_class(maxsize))


def _map(queue_class: Callable[[int], _Q], client: Any, func: Callable[..., Any], q: SupportsGet[Any],
         maxsize: int, submit_kwargs: dict[str, Any]) -> _Q:
    submit_kwargs.setdefault("pure", False)

    def submit(x: Any) -> Any:
        future = client.submit(func, x, **submit_kwargs)
        # Hold the input (a future, say a scattered one) until its task is done: once the stream
        # lets go of it, dask may drop its data ("lost dependencies").
        future.add_done_callback(lambda _, x=x: None)
        return future

    return _stage(q, submit, queue_class(maxsize))


def _gather(queue_class: Callable[[int], _Q], client: Any, q: SupportsGet[Any], maxsize: int) -> _Q:
    def result(future: Any) -> Any:
        try:
            return future.result()
        except Exception as exc:
            return _Failure.local(exc)

    return _stage(q, result, queue_class(maxsize))


def scatter(client: Any, q: SupportsGet[Any], maxsize: int = 0) -> ClosableQueue[Any]:
    """A queue of futures, one per item of q, whose data lives on the cluster."""
    return _scatter(ClosableQueue, client, q, maxsize)


def map(client: Any, func: Callable[..., Any], q: SupportsGet[Any], maxsize: int = 0,
        **submit_kwargs: Any) -> ClosableQueue[Any]:
    """A queue of futures of func(x) for each future (or value) x of q, in order."""
    return _map(ClosableQueue, client, func, q, maxsize, submit_kwargs)


def gather(client: Any, q: SupportsGet[Any], maxsize: int = 0) -> ClosableQueue[Any]:
    """A queue of the local results of the futures in q, in order."""
    return _gather(_GatherQueue, client, q, maxsize)


__all__ = ["scatter", "map", "gather"]
