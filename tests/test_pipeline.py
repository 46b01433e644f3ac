"""ClosableQueue, StoppableWorker, multiplex and merge on both cores."""
import threading
import time

import pytest

import fastq


@pytest.fixture
def api(impl):
    ns = impl.api
    return ns.ClosableQueue, ns.StoppableWorker, ns.multiplex, ns.merge


def test_public_names_are_bound_to_their_core():
    assert issubclass(fastq.pure.ClosableQueue, fastq.pure.Queue)
    assert issubclass(fastq.ClosableQueue, fastq.Queue)
    assert issubclass(fastq.Closed, fastq.ShutDown)


def test_close_then_drain(api):
    ClosableQueue = api[0]
    q = ClosableQueue()
    q.put(1)
    q.put(2)
    q.close()
    assert q.closed
    with pytest.raises(fastq.Closed):
        q.put(3)
    with pytest.raises(fastq.Closed):
        q.put_many([3, 4])
    assert list(q) == [1, 2]
    with pytest.raises(fastq.Closed):
        q.get()
    q.join()  # iteration called task_done() for each item


def test_iteration_calls_task_done_after_the_body(api):
    ClosableQueue = api[0]
    q = ClosableQueue()
    q.put_many(range(3))
    q.close()
    seen = []
    for item in q:
        seen.append((item, q.unfinished_tasks))
    assert seen == [(0, 3), (1, 2), (2, 1)]
    assert q.unfinished_tasks == 0


def test_three_stage_threaded_pipeline_with_back_pressure(api):
    ClosableQueue, StoppableWorker = api[:2]
    download, resize, upload = ClosableQueue(1), ClosableQueue(1), ClosableQueue(1)
    done = ClosableQueue()
    sizes = []

    def watch(q):
        def f(x):
            sizes.append(q.qsize())
            return x
        return f

    workers = [StoppableWorker(lambda x: x + 1, download, resize),
               StoppableWorker(lambda x: x * 2, resize, upload),
               StoppableWorker(lambda x: x, upload, done)]
    for w in workers:
        w.start()
    for i in range(1000):
        download.put(i)
        assert download.qsize() <= 1
    download.close()  # closing the head stops every stage
    assert list(done) == [(i + 1) * 2 for i in range(1000)]
    for w in workers:
        w.join(10)
        assert not w.is_alive()


def test_several_workers_close_their_output_once_all_finish(api):
    ClosableQueue, StoppableWorker = api[:2]
    src, out = ClosableQueue(), ClosableQueue()
    workers = [StoppableWorker(lambda x: x, src, out) for _ in range(4)]
    for w in workers:
        w.start()
    src.put_many(range(500))
    src.close()
    assert sorted(out) == list(range(500))
    assert out.closed


@pytest.mark.parametrize("bad, error, words", [
    (lambda Q: ("not callable", Q(), Q()), TypeError, "needs a callable func"),
    (lambda Q: (abs, fastq.Queue(), Q()), TypeError, "in_queue must be a ClosableQueue (it has no __iter__())"),
    (lambda Q: (abs, [1, 2], Q()), TypeError, "in_queue must be a ClosableQueue (it has no get())"),
    (lambda Q: (abs, Q(), fastq.Queue()), TypeError, "out_queue must be a ClosableQueue (it has no close())"),
    (lambda Q: (abs, Q(), None), TypeError, "out_queue must be a ClosableQueue (it has no put())"),
])
def test_stoppable_worker_checks_its_arguments_at_construction(api, bad, error, words):
    ClosableQueue, StoppableWorker = api[:2]
    with pytest.raises(error) as info:
        StoppableWorker(*bad(ClosableQueue))
    assert words in str(info.value)


def test_stoppable_worker_refuses_a_queue_that_could_never_end(api):
    ClosableQueue, StoppableWorker = api[:2]
    q = ClosableQueue()
    with pytest.raises(ValueError, match="the same queue"):
        StoppableWorker(abs, q, q)
    closed = ClosableQueue()
    closed.close()
    with pytest.raises(ValueError, match="out_queue is closed already"):
        StoppableWorker(abs, ClosableQueue(), closed)


def test_multiplex_sends_every_item_to_each_output(api):
    ClosableQueue, _, multiplex, _ = api
    src = ClosableQueue()
    outs = multiplex(3, src, maxsize=2)
    results = [None] * 3
    readers = [threading.Thread(target=lambda k=k: results.__setitem__(k, list(outs[k]))) for k in range(3)]
    for t in readers:
        t.start()
    for i in range(200):
        src.put(i)
        assert all(o.qsize() <= 2 for o in outs)
    src.close()
    for t in readers:
        t.join(10)
    assert results == [list(range(200))] * 3


def test_merge_keeps_each_source_in_order_and_closes_at_the_end(api):
    ClosableQueue, _, _, merge = api
    sources = [ClosableQueue() for _ in range(3)]
    merged = merge(*sources, maxsize=4)
    for k, s in enumerate(sources):
        s.put_many((k, i) for i in range(100))
        s.close()
    items = list(merged)
    assert sorted(items) == sorted((k, i) for k in range(3) for i in range(100))
    for k in range(3):
        assert [i for (kk, i) in items if kk == k] == list(range(100))
    with pytest.raises(fastq.Closed):
        merged.get(timeout=1)


def test_a_closed_output_stops_the_pump(api):
    ClosableQueue, _, multiplex, _ = api
    src = ClosableQueue()
    (out,) = multiplex(1, src)
    out.close()
    src.put(1)
    deadline = time.monotonic() + 5
    while src.unfinished_tasks and time.monotonic() < deadline:
        time.sleep(0.01)
    assert src.unfinished_tasks == 0  # the pump took the item, found its output closed, and ended
