"""Run-time stand-ins for typing.Generic and typing.TypeVar, for the modules `import fastq` loads.

Importing typing costs about as much as the rest of `import fastq`, so those modules import it
only for type checkers:

    TYPE_CHECKING = False
    if TYPE_CHECKING:
        from typing import Generic, TypeVar
    else:
        from fastq._typing import Generic, TypeVar

A class that derives from Generic[T] is then generic for type checkers (the stubs and annotations
say what T is) and, at run time, subscripts as the C classes and the `queue` module's do:
`cls[int]` is a types.GenericAlias. The wrappers (fastq.closable, ...) load on first use and use
typing itself.
"""
import types


class Generic:
    """Base class of the generic classes: `cls[T]` is types.GenericAlias(cls, T)."""

    __slots__ = ()

    def __class_getitem__(cls, item: object) -> types.GenericAlias:
        return types.GenericAlias(cls, item)


def TypeVar(name: str, *constraints: object, **options: object) -> str:
    """The type variable's name: at run time it only appears inside Generic[...]."""
    return name
