"""fastq.closable over the pure cores: ClosableQueue on the pure Queue (StoppableWorker, which
uses no core, is fastq.closable's own)."""
from typing import TYPE_CHECKING, Any, TypeVar

from ..closable import StoppableWorker, _Closable
from ._queue import Queue

if TYPE_CHECKING:  # Any where a constructor call does not say which (a PEP 696 default: no annotation needed)
    import typing_extensions

    _T = typing_extensions.TypeVar("_T", default=Any)
else:
    _T = TypeVar("_T")


# The mixin is type-checked against the C Queue's interface, whose mutex and conditions are
# read-only properties; the pure Queue has the same names as plain attributes.
class ClosableQueue(_Closable[_T], Queue[_T]):  # type: ignore[override]
    __doc__ = _Closable.__doc__


__all__ = ["ClosableQueue", "StoppableWorker"]
