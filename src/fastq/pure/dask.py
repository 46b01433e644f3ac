"""fastq.dask over the pure cores: scatter, map and gather build pure ClosableQueues."""
from collections.abc import Callable
from typing import Any

from ..dask import _gather, _map, _RaisesFailures, _scatter
from ..pipeline import SupportsGet
from .closable import ClosableQueue


# (the mixins are type-checked against the C Queue: see fastq.pure.closable)
class _GatherQueue(_RaisesFailures, ClosableQueue[Any]):  # type: ignore[override]
    pass


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
