"""ProcessQueue's constructor arguments, checked alike for both cores (the C _shm and pure._process).

Light on purpose: the C core imports it at `import fastq`, so no multiprocessing here.
"""
from operator import index

DEFAULT_CAPACITY = 1 << 20
MIN_CAPACITY = 1 << 12
MAX_CAPACITY = 1 << 40  # the ring is one mapping; larger items spill into segments of their own


def process_queue_args(maxsize, capacity, ctx, serializer):
    """(maxsize, capacity rounded up to a power of two, (dumps, loads) or None). Raises TypeError
    for a value of the wrong type and ValueError for one out of range."""
    maxsize = max(index(maxsize), 0)
    if maxsize >= 1 << 63:
        raise ValueError(f"'maxsize' must be below 2**63 (0 for unbounded), not {maxsize}")
    if capacity is None:
        capacity = DEFAULT_CAPACITY
    else:
        capacity = index(capacity)  # 4096.0 and "4096" are TypeErrors, as for maxsize
        if not MIN_CAPACITY <= capacity <= MAX_CAPACITY:
            raise ValueError(f"'capacity' must be between {MIN_CAPACITY} and {MAX_CAPACITY} bytes, not {capacity}")
        capacity = 1 << (capacity - 1).bit_length()
    if ctx is not None and not callable(getattr(ctx, "get_context", None)):
        raise TypeError(f"'ctx' must be a multiprocessing context (multiprocessing.get_context(...)), "
                        f"not {type(ctx).__name__}")
    if serializer is not None:
        if not (isinstance(serializer, tuple) and len(serializer) == 2 and all(map(callable, serializer))):
            raise TypeError("'serializer' must be a (dumps, loads) pair of callables, or None for pickle")
    return maxsize, capacity, serializer
