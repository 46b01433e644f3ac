"""fastq.dask on both cores, against a real distributed.LocalCluster (threads and processes)."""
import threading
import time

import pytest

import fastq
import fastq.dask
import fastq.pure.dask

distributed = pytest.importorskip("distributed")


def inc(x):
    return x + 1


def double(x):
    return 2 * x


def slow_inc(x):
    time.sleep(0.002)
    return x + 1


def fails_on_three(x):
    if x == 3:
        raise ValueError("three")
    return x


@pytest.fixture(scope="module", params=["threads", "processes"])
def client(request):
    processes = request.param == "processes"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=processes,
                                  dashboard_address=None, silence_logs=50) as cluster:
        with distributed.Client(cluster) as c:
            yield c


@pytest.fixture
def api(impl):
    dask = impl.api.dask
    return impl.api.ClosableQueue, (dask.scatter, dask.map, dask.gather)


def test_public_names():
    assert fastq.pure.dask.scatter.__module__ == "fastq.pure.dask"
    assert fastq.dask.scatter.__module__ == "fastq.dask"
    assert callable(fastq.dask.scatter) and callable(fastq.dask.map) and callable(fastq.dask.gather)


@pytest.mark.timeout(120)
def test_inc_then_double(client, api):
    ClosableQueue, (scatter, dmap, gather) = api
    source = ClosableQueue()
    out = gather(client, dmap(client, double, dmap(client, inc, scatter(client, source))))
    source.put(10)
    assert out.get(timeout=30) == 22
    source.close()
    assert list(out) == []  # the end propagated through every stage


@pytest.mark.timeout(120)
def test_a_200_item_stream_in_order_with_back_pressure(client, api):
    ClosableQueue, (scatter, dmap, gather) = api
    source = ClosableQueue()
    stages = []
    remote = scatter(client, source, maxsize=4)
    mapped = dmap(client, slow_inc, remote, maxsize=4)
    out = gather(client, mapped, maxsize=4)
    stages += [remote, mapped, out]
    sizes = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            sizes.append(max(s.qsize() for s in stages))
            time.sleep(0.001)

    watcher = threading.Thread(target=watch)
    watcher.start()
    for i in range(200):
        source.put(i)
    source.close()
    try:
        assert list(out) == [i + 1 for i in range(200)]
    finally:
        stop.set()
        watcher.join()
    assert max(sizes) <= 4


@pytest.mark.timeout(120)
def test_a_failing_task_raises_at_its_place_with_its_traceback(client, api):
    ClosableQueue, (scatter, dmap, gather) = api
    source = ClosableQueue()
    out = gather(client, dmap(client, fails_on_three, source))
    source.put_many(range(6))
    source.close()
    got = []
    while True:
        try:
            got.append(out.get(timeout=30))
        except fastq.WorkerError as exc:
            assert "ValueError: three" in exc.traceback
            assert isinstance(exc.__cause__, ValueError)
            got.append("error")
        except fastq.Closed:
            break
    assert got == [0, 1, 2, "error", 4, 5]
