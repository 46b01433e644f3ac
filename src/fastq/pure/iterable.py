"""fastq.iterable over the pure cores: IterableQueue on the pure ProcessQueue (the endpoints,
which use no core, are fastq.iterable's own)."""
from typing import TYPE_CHECKING, Any, TypeVar

from ..iterable import Consumer, Producer, _IterableQueue
from ._process import ProcessQueue

if TYPE_CHECKING:  # Any where a constructor call does not say which (a PEP 696 default: no annotation needed)
    import typing_extensions

    _T = typing_extensions.TypeVar("_T", default=Any)
else:
    _T = TypeVar("_T")


class IterableQueue(_IterableQueue[_T]):
    __doc__ = _IterableQueue.__doc__
    _ProcessQueue = ProcessQueue


__all__ = ["IterableQueue", "Producer", "Consumer"]
