"""pytest-benchmark suite settings: the size switch and the fixture that loads a row or skips it.

Default sizes keep a run to about a minute on two cores; FASTQ_BENCH_FULL=1 in the environment, or
--bench-full, gives the sizes the issue's targets are stated in (the handoff moves 1M ints per round).
"""
import os

import pytest


def pytest_addoption(parser):
    parser.addoption("--bench-full", action="store_true", default=False,
                     help="full sizes (two-thread handoff of 1M ints per round); same as FASTQ_BENCH_FULL=1")


@pytest.fixture(scope="session")
def bench_full(request):
    return request.config.getoption("--bench-full") or os.environ.get("FASTQ_BENCH_FULL", "") not in ("", "0")


@pytest.fixture
def make_ops(request):
    """make_ops(row) -> Ops over a fresh queue, or skip the test naming what is missing."""

    def make(row):
        try:
            return row.make_ops()
        except (ImportError, AttributeError) as exc:
            pytest.skip(f"{row.name}: {row.missing}: {exc}")

    return make
