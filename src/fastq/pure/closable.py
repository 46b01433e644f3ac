"""fastq.closable over the pure cores: ClosableQueue on the pure Queue (StoppableWorker, which
uses no core, is fastq.closable's own)."""
from ..closable import StoppableWorker, _Closable
from ._queue import Queue


class ClosableQueue(_Closable, Queue):
    __doc__ = _Closable.__doc__


__all__ = ["ClosableQueue", "StoppableWorker"]
