"""fastq.iterable over the pure cores: IterableQueue on the pure ProcessQueue (the endpoints,
which use no core, are fastq.iterable's own)."""
from ..iterable import Consumer, Producer, _IterableQueue
from ._process import ProcessQueue


class IterableQueue(_IterableQueue):
    __doc__ = _IterableQueue.__doc__
    _ProcessQueue = ProcessQueue


__all__ = ["IterableQueue", "Producer", "Consumer"]
