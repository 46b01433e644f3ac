"""fastq's public API on the pure-Python cores: the fallback, and the yardstick for benchmarks."""
from ..errors import Closed, Done, Empty, Full, QueueCorrupted, ShutDown, WorkerDied, WorkerError
from ._process import ProcessQueue
from ._queue import LifoQueue, PriorityQueue, Queue, SimpleQueue
from ._reorder import ReorderBuffer
from .. import iterable as _iterable
from .. import closable as _closable, parallel as _parallel, pipeline as _pipeline

ClosableQueue, StoppableWorker = _closable.bind(Queue)
multiplex, merge = _pipeline.bind(ClosableQueue)
IterableQueue = _iterable.bind(ProcessQueue)
ParallelQueue, ParallelSingleTaskQueue = _parallel.bind(ReorderBuffer, Queue, ProcessQueue)

IMPLEMENTATION = "python"

__all__ = [
    "Queue", "LifoQueue", "PriorityQueue", "SimpleQueue", "ReorderBuffer", "ProcessQueue",
    "ClosableQueue", "StoppableWorker", "multiplex", "merge", "IterableQueue", "ParallelQueue", "ParallelSingleTaskQueue",
    "Empty", "Full", "ShutDown", "Closed", "Done", "WorkerError", "WorkerDied", "QueueCorrupted",
    "IMPLEMENTATION",
]
