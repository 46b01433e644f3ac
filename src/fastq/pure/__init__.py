"""fastq's public API on the pure-Python cores: the fallback, and the yardstick for benchmarks."""
from ..errors import Closed, Done, Empty, Full, QueueCorrupted, ShutDown, WorkerDied, WorkerError
from ._queue import LifoQueue, PriorityQueue, Queue, SimpleQueue
from ._reorder import ReorderBuffer

IMPLEMENTATION = "python"

__all__ = [
    "Queue", "LifoQueue", "PriorityQueue", "SimpleQueue", "ReorderBuffer",
    "Empty", "Full", "ShutDown", "Closed", "Done", "WorkerError", "WorkerDied", "QueueCorrupted",
    "IMPLEMENTATION",
]
