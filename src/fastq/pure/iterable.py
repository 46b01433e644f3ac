"""fastq.iterable over the pure cores: IterableQueue on the pure ProcessQueue (the endpoints,
which use no core, are fastq.iterable's own)."""
from typing import TypeVar

from ..iterable import Consumer, Producer, _IterableQueue
from ._process import ProcessQueue

_T = TypeVar("_T")


class IterableQueue(_IterableQueue[_T]):
    __doc__ = _IterableQueue.__doc__
    _ProcessQueue = ProcessQueue


__all__ = ["IterableQueue", "Producer", "Consumer"]
