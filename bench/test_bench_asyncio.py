"""The asyncio face against janus, culsans, aioprocessing, asyncio.Queue + call_soon_threadsafe and
run_in_executor: one benchmark group per case (thread -> coroutine, coroutine -> thread, process ->
coroutine), one row per rival. Rows and cases are defined once, in fastq.bench.aio, which
`python -m fastq.bench.aio` prints as a table."""
import pytest

from fastq.bench.aio import CASES, ROWS

ROUNDS = 3


@pytest.mark.parametrize("row", ROWS, ids=[f"{row.case}-{row.name}" for row in ROWS])
def test_asyncio_handoff(benchmark, bench_full, row):
    n = CASES[row.case] * (5 if bench_full else 1)
    try:
        row.run(10)  # loads the rival (or skips naming it), and warms up
    except (ImportError, AttributeError) as exc:
        pytest.skip(f"{row.name}: {row.missing or exc}")
    benchmark.group = f"asyncio {row.case}, {n:,} items per round"
    benchmark.extra_info.update(row=row.name, case=row.case, items_per_round=n)
    benchmark.pedantic(row.run, args=(n,), rounds=ROUNDS, iterations=1)
