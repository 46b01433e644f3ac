"""fastq.parallel over the pure cores: ParallelQueue and ParallelSingleTaskQueue on the pure
ReorderBuffer, Queue (thread backend) and ProcessQueue (process backend)."""
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from ..parallel import _ParallelQueue, _SingleTask
from ._process import ProcessQueue
from ._queue import Queue
from ._reorder import ReorderBuffer

if TYPE_CHECKING:  # Any where a constructor call does not say which (a PEP 696 default: no annotation needed)
    import typing_extensions

    _R = typing_extensions.TypeVar("_R", default=Any)
else:
    _R = TypeVar("_R")


class ParallelQueue(_ParallelQueue):
    __doc__ = _ParallelQueue.__doc__
    _ReorderBuffer, _Queue, _ProcessQueue = ReorderBuffer, Queue, ProcessQueue


class ParallelSingleTaskQueue(_SingleTask[_R], ParallelQueue):
    __doc__ = _SingleTask.__doc__

    if TYPE_CHECKING:  # the results are func's
        def get(self, block: bool = True, timeout: float | None = None) -> _R: ...
        def __iter__(self) -> Iterator[_R]: ...


__all__ = ["ParallelQueue", "ParallelSingleTaskQueue"]
