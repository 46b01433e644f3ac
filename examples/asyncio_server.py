"""An asyncio TCP server that answers from worker processes through two fastq ProcessQueues.

Each connection sends numbers, one per line; the server puts (request id, number) on `requests`,
2 worker processes square them and put (request id, answer) on `replies`, and one coroutine awaits
the replies (`async for`) and hands each to the connection waiting for it. No thread waits per
request: the event loop awaits the queue. Then 4 clients send 5 numbers each.
Prints: "answered 20 requests from 2 worker processes, all correct: True".
"""
import asyncio
import itertools
import multiprocessing

import fastq


def work(requests, replies):
    while True:
        try:
            rid, n = requests.get()
        except fastq.ShutDown:  # the server is done
            return
        replies.put((rid, n * n))


async def serve(requests, replies, clients, numbers):
    pending = {}  # request id -> the future its connection awaits
    ids = itertools.count()

    async def dispatch():
        async for rid, answer in replies:  # until replies is shut down
            pending.pop(rid).set_result(answer)

    async def handle(reader, writer):
        while line := await reader.readline():
            rid = next(ids)
            pending[rid] = asyncio.get_running_loop().create_future()
            await requests.async_put((rid, int(line)))
            writer.write(b"%d\n" % await pending[rid])
            await writer.drain()
        writer.close()

    async def client(k):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        answers = []
        for n in range(k * 100, k * 100 + numbers):
            writer.write(b"%d\n" % n)
            await writer.drain()
            answers.append(int(await reader.readline()) == n * n)
        writer.close()
        await writer.wait_closed()
        return answers

    dispatcher = asyncio.create_task(dispatch())
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        results = await asyncio.gather(*(client(k) for k in range(clients)))
    replies.shutdown()
    await dispatcher
    return [ok for answers in results for ok in answers]


def main(workers=2, clients=4, numbers=5):
    ctx = multiprocessing.get_context()
    pure = fastq.IMPLEMENTATIONS["ProcessQueue"] == "python"
    requests, replies = (fastq.ProcessQueue(ctx=ctx) if pure else fastq.ProcessQueue() for _ in range(2))
    procs = [ctx.Process(target=work, args=(requests, replies)) for _ in range(workers)]
    for p in procs:
        p.start()
    answers = asyncio.run(serve(requests, replies, clients, numbers))
    requests.shutdown()  # the workers return
    for p in procs:
        p.join()
    print(f"answered {len(answers)} requests from {workers} worker processes, all correct: {all(answers)}")


if __name__ == "__main__":
    main()
