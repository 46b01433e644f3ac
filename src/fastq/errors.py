"""The exception classes: the `queue` module's own where they exist, so `except queue.Empty` keeps working."""
import sys
from queue import Empty as Empty, Full as Full

if sys.version_info >= (3, 13):
    from queue import ShutDown as ShutDown
else:

    class ShutDown(Exception):
        """Raised when put/get with shut-down queue."""


class EmptyTimeout(Empty, TimeoutError):
    """An async_get() that timed out: both queue.Empty and TimeoutError (on Python 3.10 also
    asyncio.TimeoutError, a separate class there)."""


class FullTimeout(Full, TimeoutError):
    """An async_put() that timed out: both queue.Full and TimeoutError (on Python 3.10 also
    asyncio.TimeoutError)."""


class Closed(ShutDown):
    """Raised by put() on a closed ClosableQueue, and by get() once it is closed and drained."""


class Done(Exception):
    """Raised by an IterableQueue consumer's get() once the queue is drained and no producer is left."""


class WorkerError(Exception):
    """A task raised in a worker; the worker's formatted traceback is in `.traceback`."""

    def __init__(self, message: str, traceback: str = "") -> None:
        super().__init__(message, traceback)
        self.traceback = traceback

    def __str__(self) -> str:
        return f"{self.args[0]}\n\nWorker traceback:\n{self.traceback}" if self.traceback else str(self.args[0])


class WorkerDied(Exception):
    """The worker that held a task died (killed, crashed, os._exit) before returning its result."""


class QueueCorrupted(Exception):
    """A shared-memory segment holds values no correct participant could have written."""


__all__ = ["Empty", "Full", "ShutDown", "EmptyTimeout", "FullTimeout", "Closed", "Done", "WorkerError", "WorkerDied", "QueueCorrupted"]
