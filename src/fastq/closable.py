"""ClosableQueue and StoppableWorker: a Queue that can be closed and iterated, and a thread that
drains one into another (Effective Python's pipeline, on fastq's cores).

Written once over a core: `bind(Queue)` returns the classes for that core's Queue, so
fastq.ClosableQueue sits on the C Queue and fastq.pure.ClosableQueue on the pure one.
"""
import functools
import threading

from .errors import Closed, ShutDown


def _closed_instead_of_shutdown(method):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Closed:
            raise
        except ShutDown as exc:
            err = Closed(f"{method.__name__}() on a closed queue")
            if hasattr(exc, "inserted"):
                err.inserted = exc.inserted
            raise err from None

    return wrapper


@functools.cache
def bind(Queue):
    """The ClosableQueue and StoppableWorker classes for one core's Queue."""

    class ClosableQueue(Queue):
        """A Queue with close(). Iterating it yields items until it is closed and drained,
        calling task_done() for each item when the loop asks for the next one. put() after
        close() raises Closed; so does get() once the queue is closed and drained. Closed is a
        ShutDown: close() is shutdown(immediate=False)."""

        def close(self):
            """No more items will be put; consumers drain what is queued, then stop."""
            self.shutdown(immediate=False)

        @property
        def closed(self):
            return self.is_shutdown

        put = _closed_instead_of_shutdown(Queue.put)
        get = _closed_instead_of_shutdown(Queue.get)
        put_many = _closed_instead_of_shutdown(Queue.put_many)
        get_many = _closed_instead_of_shutdown(Queue.get_many)

        def put_nowait(self, item):
            return self.put(item, False)

        def get_nowait(self):
            return self.get(False)

        def __iter__(self):
            while True:
                try:
                    item = self.get()
                except ShutDown:  # Closed included
                    return
                try:
                    yield item
                finally:
                    self.task_done()

    class StoppableWorker(threading.Thread):
        """A daemon thread that puts func(item) on `out_queue` for every item of the closable
        `in_queue` until it is closed and drained. When the last worker feeding `out_queue`
        finishes, it closes `out_queue`, so closing the head of a pipeline stops every stage."""

        _feeding = {}  # id(out_queue) -> number of running workers that feed it
        _feeding_lock = threading.Lock()

        def __init__(self, func, in_queue, out_queue, **thread_kwargs):
            thread_kwargs.setdefault("daemon", True)
            super().__init__(**thread_kwargs)
            self.func = func
            self.in_queue = in_queue
            self.out_queue = out_queue

        def start(self):
            with self._feeding_lock:
                key = id(self.out_queue)
                self._feeding[key] = self._feeding.get(key, 0) + 1
            super().start()

        def run(self):
            try:
                for item in self.in_queue:
                    self.out_queue.put(self.func(item))
            finally:
                with self._feeding_lock:
                    key = id(self.out_queue)
                    self._feeding[key] -= 1
                    last = self._feeding[key] == 0
                    if last:
                        del self._feeding[key]
                if last:
                    self.out_queue.close()

    return ClosableQueue, StoppableWorker
