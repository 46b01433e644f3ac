"""fastq's logger, `logging.getLogger("fastq")`, with a NullHandler as a library's should have: what
it records (a worker's death and its replacement, a fallback to the pure cores) reaches the
program's handlers when it configures logging, and nowhere otherwise. Imported where fastq logs,
so `import fastq` does not load logging."""
import logging

logger = logging.getLogger("fastq")
logger.addHandler(logging.NullHandler())
