"""fastq's public API on the pure-Python cores: the fallback, and the yardstick for benchmarks.

The in-process cores load with it; ProcessQueue (it brings multiprocessing) and the wrappers
(fastq.pure.closable, .pipeline, .iterable, .parallel, .dask: fastq's own code over these
cores) load on first use.
"""
from .. import _lazy
from ..errors import Closed, Done, Empty, EmptyTimeout, Full, FullTimeout, QueueCorrupted, ShutDown, WorkerDied, WorkerError
from ._queue import LifoQueue, PriorityQueue, Queue, SimpleQueue
from ._reorder import ReorderBuffer

IMPLEMENTATION = "python"

TYPE_CHECKING = False  # (typing is not imported: fastq/_typing.py)
if TYPE_CHECKING:  # what the lazy names below resolve to
    from . import closable, dask, iterable, parallel, pipeline
    from ._process import ProcessQueue
    from .closable import ClosableQueue, StoppableWorker
    from .iterable import IterableQueue
    from .parallel import ParallelQueue, ParallelSingleTaskQueue
    from .pipeline import merge, multiplex

# (hidden from type checkers, which see the imports above: a module __getattr__ would make a
# misspelt name Any instead of an error)
if not TYPE_CHECKING:
    __getattr__, __dir__ = _lazy.attach(globals(), {
        "ProcessQueue": "_process", "ClosableQueue": "closable", "StoppableWorker": "closable",
        "multiplex": "pipeline", "merge": "pipeline", "IterableQueue": "iterable",
        "ParallelQueue": "parallel", "ParallelSingleTaskQueue": "parallel",
    }, ("closable", "pipeline", "iterable", "parallel", "dask"))

__all__ = [
    "Queue", "LifoQueue", "PriorityQueue", "SimpleQueue", "ReorderBuffer", "ProcessQueue",
    "ClosableQueue", "StoppableWorker", "multiplex", "merge", "IterableQueue", "ParallelQueue", "ParallelSingleTaskQueue",
    "Empty", "Full", "ShutDown", "EmptyTimeout", "FullTimeout", "Closed", "Done", "WorkerError", "WorkerDied", "QueueCorrupted",
    "IMPLEMENTATION",
]
