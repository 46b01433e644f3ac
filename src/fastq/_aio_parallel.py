"""ParallelQueue's asyncio face: async_get() and async_map(), written over its sync API (get,
map), so that they stay apart from how the results are made.

async_get awaits wakes from the results' ReorderBuffer the way the queues do (fastq/_aio.py); a
ParallelQueue without one is looked at every few milliseconds instead. async_map runs map() in one
thread that hands the results over through a small core Queue, which the coroutine awaits: one
thread per map, none per result.
"""
from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, TypeVar

from .errors import ShutDown

_T = TypeVar("_T")
_R = TypeVar("_R")
_POLL = 0.005  # seconds between looks when there is nothing to await wakes from
_HANDOFF = 64  # results map() may run ahead of the coroutine, beyond the queue's own window


class _AsyncResults:
    __slots__ = ()

    async def async_get(self, timeout: float | None = None) -> Any:
        """Await the next result in submission order, at most `timeout` seconds (then an
        exception that is both queue.Empty and TimeoutError); raises as get() does. A cancelled
        call took nothing."""
        from . import _aio

        buffer = getattr(self, "_buffer", None)
        if not hasattr(buffer, "_async_watch"):
            buffer = None
        return await _aio.take(self.get, buffer, timeout, _POLL if buffer is None else _aio._FOREVER)  # type: ignore[attr-defined]

    async def async_map(self, func: Callable[[_T], _R], iterable: Iterable[_T],
                        chunksize: int | None = None) -> AsyncIterator[_R]:
        """As map(), awaiting each result. Leaving the loop early stops the feeding; closing the
        iterator awaits the tasks already put (their results are dropped), as map() does. (An
        async generator left by `break` is closed later by its loop: to run another map at once,
        wrap it in contextlib.aclosing.)"""
        import asyncio

        results = self.map(func, iterable, chunksize)  # type: ignore[attr-defined]
        handoff = self._Queue(_HANDOFF)  # type: ignore[attr-defined]
        loop = asyncio.get_running_loop()
        finished = loop.create_future()

        def pump() -> None:
            try:
                for result in results:
                    handoff.put((True, result))
                handoff.put((False, None))
            except ShutDown:  # the coroutine left
                pass
            except BaseException as exc:  # a task's error, or map's: raised in the coroutine
                try:
                    handoff.put((False, exc))
                except ShutDown:
                    pass
            finally:
                results.close()  # map's own clean-up when left early
                try:
                    loop.call_soon_threadsafe(_set_done, finished)
                except RuntimeError:  # the loop is closed
                    pass

        threading.Thread(target=pump, name="fastq-async-map", daemon=True).start()
        try:
            while True:
                ok, value = await handoff.async_get()
                if ok:
                    yield value
                elif value is None:
                    return
                else:
                    raise value
        finally:
            handoff.shutdown(immediate=True)
            await finished


def _set_done(fut: Any) -> None:
    if not fut.done():
        fut.set_result(None)
