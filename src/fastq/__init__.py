"""fastq: drop-in, C-accelerated queues for threads and processes.

The C cores are used unless FASTQ_NO_EXTENSIONS=1 is set at run time or the extension is missing
(a pure build: FASTQ_NO_EXTENSIONS=1 at build time); fastq/_cores.py decides, and warns when the C
core is missing by accident. `fastq.IMPLEMENTATION` says which. `fastq.pure` always holds the
pure-Python cores, importable side by side.

`import fastq` loads the cores only: the wrappers (ClosableQueue, IterableQueue, ParallelQueue,
...), fastq.pure and, without the C ring, the pure ProcessQueue load on first use.
"""
from types import ModuleType

from . import _cores, _lazy
from .errors import Closed, Done, Empty, EmptyTimeout, Full, FullTimeout, QueueCorrupted, ShutDown, WorkerDied, WorkerError

__version__ = "0.1.0"

_c_core: ModuleType | None = _cores.c_core()  # None: the pure cores (fastq/_cores.py says when and why)

if _c_core is not None:
    from ._core import LifoQueue, PriorityQueue, Queue, ReorderBuffer, SimpleQueue

    IMPLEMENTATION = "c"
else:
    # type checkers see the C classes (their stubs, _core.pyi); the pure twins have the same interface
    from .pure._queue import LifoQueue, PriorityQueue, Queue, SimpleQueue  # type: ignore[assignment]
    from .pure._reorder import ReorderBuffer  # type: ignore[assignment]

    IMPLEMENTATION = "python"

# The C ProcessQueue is Linux first: elsewhere (or before it is built) fastq.ProcessQueue is the
# pure twin, imported on first use (it brings multiprocessing).
_lazy_names = {
    "ClosableQueue": "closable", "StoppableWorker": "closable", "multiplex": "pipeline", "merge": "pipeline",
    "IterableQueue": "iterable", "ParallelQueue": "parallel", "ParallelSingleTaskQueue": "parallel",
}
if hasattr(_c_core, "ProcessQueue"):
    from ._core import ProcessQueue
else:
    _lazy_names["ProcessQueue"] = "pure._process"
# the core ("c" or "python") behind each class: IMPLEMENTATION, except where a C class is not built here
IMPLEMENTATIONS = dict.fromkeys(("Queue", "LifoQueue", "PriorityQueue", "SimpleQueue", "ReorderBuffer"), IMPLEMENTATION)
IMPLEMENTATIONS["ProcessQueue"] = "c" if hasattr(_c_core, "ProcessQueue") else "python"

TYPE_CHECKING = False  # (typing is not imported: fastq/_typing.py)
if TYPE_CHECKING:  # what the lazy names below resolve to
    from . import closable, dask, iterable, parallel, pipeline, pure
    from .closable import ClosableQueue, StoppableWorker
    from .iterable import IterableQueue
    from .parallel import ParallelQueue, ParallelSingleTaskQueue
    from .pipeline import merge, multiplex

# (hidden from type checkers, which see the imports above: a module __getattr__ would make a
# misspelt name Any instead of an error)
if not TYPE_CHECKING:
    __getattr__, __dir__ = _lazy.attach(globals(), _lazy_names,
                                        ("pure", "closable", "pipeline", "iterable", "parallel", "dask"))

__all__ = [
    "Queue", "LifoQueue", "PriorityQueue", "SimpleQueue", "ReorderBuffer", "ProcessQueue",
    "ClosableQueue", "StoppableWorker", "multiplex", "merge", "IterableQueue", "ParallelQueue", "ParallelSingleTaskQueue",
    "Empty", "Full", "ShutDown", "EmptyTimeout", "FullTimeout", "Closed", "Done", "WorkerError", "WorkerDied", "QueueCorrupted",
    "IMPLEMENTATION", "IMPLEMENTATIONS", "pure", "__version__",
]
