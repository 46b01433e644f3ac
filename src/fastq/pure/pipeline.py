"""fastq.pipeline over the pure cores: multiplex and merge build pure ClosableQueues."""
from typing import TypeVar

from ..pipeline import SupportsGet, _merge, _multiplex
from .closable import ClosableQueue

_T = TypeVar("_T")


def multiplex(n: int, q: SupportsGet[_T], maxsize: int = 0) -> list[ClosableQueue[_T]]:
    """Return n ClosableQueues that each receive every item of q, in q's order."""
    return _multiplex(ClosableQueue, n, q, maxsize)


def merge(*qs: SupportsGet[_T], maxsize: int = 0) -> ClosableQueue[_T]:
    """Return one ClosableQueue that receives the items of every q (each source's order kept);
    it is closed once every source has ended."""
    return _merge(ClosableQueue, qs, maxsize)


__all__ = ["multiplex", "merge"]
