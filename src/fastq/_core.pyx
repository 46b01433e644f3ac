# cython: language_level=3, boundscheck=False, wraparound=False
"""fastq's C cores. One .pxi per core; the plain C they include lives in _c/."""
cimport cython

include "_queue.pxi"
include "_reorder.pxi"
