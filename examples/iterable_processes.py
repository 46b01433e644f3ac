"""3 producer processes x 10 items, 5 consumer processes, one IterableQueue.

Consumers iterate until every producer has closed (or died) and the queue is drained.
Prints: "consumed 30 items from 3 producers, each once: True".
"""
import multiprocessing

import fastq


def produce(producer, k, n):
    with producer:  # closes it at the end
        for i in range(n):
            producer.put((k, i))


def consume(consumer, results):
    for item in consumer:
        results.put(item)


def main(producers=3, items=10, consumers=5):
    ctx = multiprocessing.get_context()
    iq = fastq.IterableQueue(ctx=ctx) if fastq.IMPLEMENTATIONS["ProcessQueue"] == "python" else fastq.IterableQueue()
    results = ctx.Queue()
    procs = [ctx.Process(target=produce, args=(iq.get_producer(), k, items)) for k in range(producers)]
    procs += [ctx.Process(target=consume, args=(iq.get_consumer(), results)) for _ in range(consumers)]
    iq.close()  # no more producers will be made
    for p in procs:
        p.start()
    got = [results.get(timeout=60) for _ in range(producers * items)]
    for p in procs:
        p.join()
    expected = sorted((k, i) for k in range(producers) for i in range(items))
    print(f"consumed {len(got)} items from {producers} producers, each once: {sorted(got) == expected}")


if __name__ == "__main__":
    main()
