"""fastq.dask on the pure-Python cores: scatter, map and gather with pure ClosableQueues."""
from ..dask import bind
from . import ClosableQueue

scatter, map, gather = bind(ClosableQueue)
