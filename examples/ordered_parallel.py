"""Ordered parallel execution with batch markers on a ParallelQueue.

Tasks of random durations run on worker processes; results come back in submission order, and a
non-callable put (here a BatchDone marker) passes through in its place, so the consumer knows
where each batch ends. Prints one line per batch: "batch 0: [0, 1, 4, 9, 16]" and so on.
"""
import random
import sys
import time


class BatchDone:
    def __init__(self, number):
        self.number = number


def square(x):
    time.sleep(random.random() * 0.005)
    return x * x


def main(batches=3, size=5):
    import fastq

    with fastq.ParallelQueue(worker_count=2) as pq:
        for b in range(batches):  # put() never waits: tasks beyond the window wait in line
            for i in range(b * size, (b + 1) * size):
                pq.put(square, i)
            pq.put(BatchDone(b))
        batch = []
        done = 0
        while done < batches:
            item = pq.get()
            if isinstance(item, BatchDone):
                print(f"batch {item.number}: {batch}")
                batch = []
                done += 1
            else:
                batch.append(item)

if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
