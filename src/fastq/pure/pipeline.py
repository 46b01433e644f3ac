"""fastq.pipeline over the pure cores: multiplex and merge build pure ClosableQueues."""
from ..pipeline import _merge, _multiplex
from .closable import ClosableQueue


def multiplex(n, q, maxsize=0):
    """Return n ClosableQueues that each receive every item of q, in q's order."""
    return _multiplex(ClosableQueue, n, q, maxsize)


def merge(*qs, maxsize=0):
    """Return one ClosableQueue that receives the items of every q (each source's order kept);
    it is closed once every source has ended."""
    return _merge(ClosableQueue, qs, maxsize)


__all__ = ["multiplex", "merge"]
