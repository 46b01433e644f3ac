"""A three-stage threaded pipeline (download -> resize -> upload) on ClosableQueues.

maxsize=1 between stages: a fast stage waits for a slow one (back-pressure). Closing the first
queue stops every stage in turn. Prints: "processed 20 items in order: True".
"""
import sys
import time

import fastq


def download(item):
    return item


def resize(item):
    time.sleep(0.001)  # the slow stage
    return item * 2


def upload(item):
    return f"uploaded {item}"


def main(n=20):
    download_q, resize_q, upload_q = (fastq.ClosableQueue(maxsize=1) for _ in range(3))
    done_q = fastq.ClosableQueue()
    workers = [
        fastq.StoppableWorker(download, download_q, resize_q),
        fastq.StoppableWorker(resize, resize_q, upload_q),
        fastq.StoppableWorker(upload, upload_q, done_q),
    ]
    for w in workers:
        w.start()
    for i in range(n):
        download_q.put(i)
    download_q.close()  # the end propagates: each worker closes its output when its input ends
    results = list(done_q)
    for w in workers:
        w.join()
    print(f"processed {len(results)} items in order: {results == [f'uploaded {2 * i}' for i in range(n)]}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
