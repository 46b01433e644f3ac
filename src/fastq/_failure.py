"""Failures a ParallelQueue files in its reorder buffer in place of a result: get() raises them."""
import pickle
import traceback
from types import TracebackType
from typing import NoReturn

# What a worker sends for a failed task: (the pickled exception or None, a one-line message, the
# formatted traceback).
Remote = tuple[bytes | None, str, str]

from .errors import WorkerError

_PROTOCOL = pickle.HIGHEST_PROTOCOL


class _Failure:
    """What get() raises instead of returning: filed in the buffer under the failed task's id."""

    __slots__ = ("exc", "cause", "remote")

    def __init__(self, exc: BaseException | None = None, cause: BaseException | None = None,
                 remote: Remote | None = None) -> None:
        self.exc = exc  # a ready exception (WorkerError, WorkerDied)
        self.cause = cause  # the original exception, when it lives in this process
        self.remote = remote  # (pickled exception or None, message, traceback text) from a worker

    @classmethod
    def local(cls, exc: BaseException, tb: TracebackType | None = None) -> "_Failure":
        """A task's exception caught in this process (thread backend, executor, dask)."""
        text = "".join(traceback.format_exception(type(exc), exc, tb if tb is not None else exc.__traceback__))
        return cls(WorkerError(_one_line(exc), text), cause=exc)

    def raise_(self) -> NoReturn:
        if self.remote is None:
            assert self.exc is not None
            raise self.exc from self.cause
        data, message, text = self.remote
        cause = None
        if data is not None:
            try:
                cause = pickle.loads(data)
            except Exception:  # an exception class that does not unpickle: the text still tells
                cause = None
        raise WorkerError(message, text) from cause


def _one_line(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def _describe(exc: BaseException, skip_frames: int = 1) -> Remote:
    """(pickled exception or None, one-line message, formatted traceback) for the parent."""
    tb = exc.__traceback__
    for _ in range(skip_frames):  # the worker loop's own frame tells the user nothing
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    try:
        data = pickle.dumps(exc, _PROTOCOL)
    except Exception:
        data = None
    return data, _one_line(exc), text


def _unsent(packet_id: int, exc: BaseException) -> _Failure:
    return _Failure(WorkerError(f"task {packet_id} could not be sent: {_one_line(exc)}",
                                "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))),
                    cause=exc)


def _format(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
