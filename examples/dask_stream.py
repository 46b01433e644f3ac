"""Stream a local queue through a dask cluster: inc, then double, results back in order.

Needs `pip install fastq-queue[dask]`. Prints: "22" (10 -> inc -> double), then
"first 5 of 100: [2, 4, 6, 8, 10]".
"""
import sys

import fastq
import fastq.dask


def inc(x):
    return x + 1


def double(x):
    return 2 * x


def main(n=100):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None,
                      silence_logs=50) as cluster, Client(cluster) as client:
        source = fastq.ClosableQueue()
        remote = fastq.dask.scatter(client, source, maxsize=10)
        incremented = fastq.dask.map(client, inc, remote, maxsize=10)
        doubled = fastq.dask.map(client, double, incremented, maxsize=10)
        results = fastq.dask.gather(client, doubled, maxsize=10)
        source.put(10)
        print(results.get())
        for i in range(n):
            source.put(i)
        source.close()  # ends the stream: every stage closes in turn
        out = list(results)
        print(f"first 5 of {len(out)}: {out[:5]}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
