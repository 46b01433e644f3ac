"""map()'s groups of short tasks: several items under one packet id, so that a task of a few
microseconds does not pay a whole message round trip (and a thread wake or two) of its own.

A group is sent as a task whose args are None and whose kwargs are the list of items (put()
never makes args None); each backend runs it through run_chunk(), which returns a _Chunk. The
consumer (ParallelQueue._map_results) yields its results in order, then raises its failure if an
item failed: map() ends at the first failure, so the items after it in the group are not run.
"""
import pickle
import sys
from collections.abc import Callable, Iterable
from time import perf_counter
from typing import Any

from ._failure import _PROTOCOL, _describe, _Failure

TARGET = 0.005  # seconds of work per group: the parent's cost per message (thread wakes) stays small
MAX_ITEMS = 512  # items per group at most (a window of groups holds at most this many times more)
MAX_BYTES = 1 << 20  # serialized bytes per group at most, where the backend serializes (processes)


class _Chunk:
    """The results of a group, in order; `failure` (a _Failure) for the item that raised, after
    them; `took`: the seconds its items ran, for sizing the next groups."""

    __slots__ = ("results", "failure", "took", "count")

    def __init__(self, results: list[Any], failure: _Failure | None, took: float, count: int) -> None:
        self.results = results
        self.failure = failure
        self.took = took
        self.count = count  # items run, the failed one included

    def __reduce__(self) -> tuple[type["_Chunk"], tuple[list[Any], _Failure | None, float, int]]:
        return _Chunk, (self.results, self.failure, self.took, self.count)

    def salvage(self) -> None:
        """Cut the results before the first one that does not pickle, which becomes the failure
        (a worker calls this when the group as a whole would not go through its result queue)."""
        for i, result in enumerate(self.results):
            try:
                pickle.dumps(result, _PROTOCOL)
            except BaseException as exc:
                self.failure = _Failure(remote=_describe(exc, skip_frames=0))
                del self.results[i:]
                return


def next_size(size: int, chunk: _Chunk) -> int:
    """Items per group after `chunk` came back from groups of `size`: about TARGET seconds of
    work, growing at most twofold at a time (one quick group says little), shrinking at once;
    and big results (judged by the first one's sys.getsizeof) a few at a time, as they would
    come alone: a group's results wait together in the window."""
    per_item = chunk.took / chunk.count
    want = MAX_ITEMS if per_item <= 0 else int(TARGET / per_item)
    if chunk.results:
        try:
            want = min(want, MAX_BYTES // max(1, sys.getsizeof(chunk.results[0])))
        except Exception:  # a __sizeof__ that fails: no cap from it
            pass
    return max(1, min(want, 2 * size, MAX_ITEMS))


def tail_floor(chunk: _Chunk) -> int:
    """Items below which a group towards the end is not shrunk: a group of less than TARGET / 8
    of work (well under a millisecond) leaves no worker idle long enough to matter, and each
    smaller one would add a message."""
    per_item = chunk.took / chunk.count
    return MAX_ITEMS if per_item <= 0 else max(1, min(MAX_ITEMS, int(TARGET / 8 / per_item)))


def byte_cap(count: int, nbytes: int) -> int:
    """Items per group that keep a group of `count` items serialized to `nbytes` under MAX_BYTES
    (nbytes 0: not serialized here, no cap): big items travel a few at a time, as they would alone."""
    if not nbytes:
        return MAX_ITEMS
    return max(1, min(MAX_ITEMS, MAX_BYTES * count // nbytes))


def run_chunk(func: Callable[[Any], Any], items: Iterable[Any], local: bool = False) -> _Chunk:
    """func(item) for each item until one raises. `local`: the failure stays in this process
    (thread backend: the exception itself is kept as the cause), else it is described for
    pickling (the traceback as text, the exception pickled if it can be)."""
    results: list[Any] = []
    failure: _Failure | None = None
    t0 = perf_counter()
    for item in items:
        try:
            results.append(func(item))
        except BaseException as exc:
            failure = _Failure.local(exc) if local else _Failure(remote=_describe(exc))
            break
    count = len(results) + (failure is not None)
    return _Chunk(results, failure, perf_counter() - t0, count)


def call(func: Callable[..., Any], args: tuple[Any, ...] | None, kwargs: Any,
         local: bool = False) -> tuple[Callable[..., Any], tuple[Any, ...], Any]:
    """(func, args, kwargs) to run a task in process, a group (args None) through run_chunk."""
    if args is None:
        return run_chunk, (func, kwargs, local), {}
    return func, args, kwargs
