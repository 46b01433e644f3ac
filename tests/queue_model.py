"""The model the tests compare fastq against: the standard library's own queue classes, plus
put_many/get_many written as the loops of put/get they stand for (their non-blocking forms, which
is all a one-thread model needs)."""
import queue
from operator import index

from fastq import errors

NEGATIVE_TIMEOUT = "'timeout' must be a non-negative number"
HAS_STDLIB_SHUTDOWN = hasattr(queue.Queue, "shutdown")


class StdlibExtras:
    """Mix into a queue.Queue (sub)class: fastq's put_many/get_many as loops of put/get."""

    def put_many(self, items, block=True, timeout=None):
        items = list(items)
        if block and timeout is not None and timeout < 0:
            raise ValueError(NEGATIVE_TIMEOUT)
        for inserted, item in enumerate(items):
            try:
                self.put(item, block, timeout)
            except (queue.Full, errors.ShutDown) as exc:  # errors.ShutDown is queue.ShutDown on 3.13+
                exc.inserted = inserted
                raise

    def get_many(self, max_items, block=True, timeout=None):
        n = index(max_items)
        if n < 1:
            raise ValueError("'max_items' must be at least 1")
        items = [self.get(block, timeout)]
        while len(items) < n and self.qsize():
            items.append(self.get_nowait())
        return items


def model_class(cls):
    """`cls` (queue.Queue or a subclass of it) with put_many/get_many."""
    return type(cls.__name__, (StdlibExtras, cls), {})


MODELS = {name: model_class(getattr(queue, name)) for name in ("Queue", "LifoQueue", "PriorityQueue")}
