"""`python -m fastq`: side-by-side benchmark tables of fastq against the queues it replaces
(fastq.bench.cli; `import fastq` itself never loads fastq.bench)."""
import sys

from .bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
