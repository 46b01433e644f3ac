# cython: language_level=3, boundscheck=False, wraparound=False
"""fastq's C cores. One .pxi per core; the plain C they include lives in _c/."""
cimport cython

include "_queue.pxi"
include "_reorder.pxi"

# ProcessQueue's ring lives in its own module, built on Linux only (setup.py); where it is
# missing, fastq uses the pure ProcessQueue.
try:
    from fastq._shm import ProcessQueue
except ImportError:
    pass
