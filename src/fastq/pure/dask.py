"""fastq.dask over the pure cores: scatter, map and gather build pure ClosableQueues."""
from ..dask import _gather, _map, _RaisesFailures, _scatter
from .closable import ClosableQueue


class _GatherQueue(_RaisesFailures, ClosableQueue):
    pass


def scatter(client, q, maxsize=0):
    """A queue of futures, one per item of q, whose data lives on the cluster."""
    return _scatter(ClosableQueue, client, q, maxsize)


def map(client, func, q, maxsize=0, **submit_kwargs):
    """A queue of futures of func(x) for each future (or value) x of q, in order."""
    return _map(ClosableQueue, client, func, q, maxsize, submit_kwargs)


def gather(client, q, maxsize=0):
    """A queue of the local results of the futures in q, in order."""
    return _gather(_GatherQueue, client, q, maxsize)


__all__ = ["scatter", "map", "gather"]
