"""Shared fixtures: `impl` runs a test against the C core and against the pure-Python core.

Modelled on aio-libs' propcache/multidict: a tiny frozen dataclass (the implementation facade),
one session-scoped fixture parametrized over it with readable ids (`c-extension-module`,
`pure-python-module`), a `c_extension` marker on the C parameter and `--no-c-extensions` to
deselect it. A missing C core skips the C parameter, unless FASTQ_REQUIRE_EXTENSIONS=1 makes it a failure.
"""
import importlib
from dataclasses import dataclass
from types import ModuleType

import pytest

from fastq import _cores, errors

_C_MODULE = "fastq._core"  # the C classes themselves, whatever FASTQ_NO_EXTENSIONS says for `fastq`
_PURE_MODULE = "fastq.pure"


@dataclass(frozen=True)
class QueueImplementation:
    """One core of the Queue family, seen through the names every test uses."""

    is_pure_python: bool

    @property
    def name(self) -> str:
        """"python" or "c", as fastq.IMPLEMENTATION spells it."""
        return "python" if self.is_pure_python else "c"

    @property
    def tag(self) -> str:
        return "pure-python" if self.is_pure_python else "c-extension"

    def __str__(self) -> str:
        return f"{self.tag}-module"

    @property
    def module(self) -> ModuleType:
        return importlib.import_module(_PURE_MODULE if self.is_pure_python else _C_MODULE)

    # The classes under test come from the core's own module; the exceptions are fastq's (the
    # `queue` module's own where they exist), which both cores must raise.
    Queue = property(lambda self: self.module.Queue)
    LifoQueue = property(lambda self: self.module.LifoQueue)
    PriorityQueue = property(lambda self: self.module.PriorityQueue)
    SimpleQueue = property(lambda self: self.module.SimpleQueue)
    @property
    def api(self) -> ModuleType:
        """The public API over this core, wrappers included: fastq.pure, or fastq itself (which
        runs on the C cores unless FASTQ_NO_EXTENSIONS=1 says otherwise: then this skips)."""
        if self.is_pure_python:
            return importlib.import_module(_PURE_MODULE)
        fastq = importlib.import_module("fastq")
        if fastq.IMPLEMENTATION != "c":
            pytest.skip("fastq runs on its pure cores here (FASTQ_NO_EXTENSIONS=1 at run time): its wrappers are fastq.pure's")
        return fastq

    @property
    def process_api(self) -> ModuleType:
        """`api`, where its ProcessQueue is this core's (skips where the C ring is not built)."""
        api = self.api
        if not self.is_pure_python and api.IMPLEMENTATIONS["ProcessQueue"] != "c":
            pytest.skip("this build has no C ProcessQueue")
        return api

    Empty = property(lambda self: errors.Empty)
    Full = property(lambda self: errors.Full)
    ShutDown = property(lambda self: errors.ShutDown)


C_IMPL = QueueImplementation(is_pure_python=False)
PURE_IMPL = QueueImplementation(is_pure_python=True)


def c_core_import_error():
    """None when the C core imports, else the ImportError's text."""
    try:
        importlib.import_module(_C_MODULE)
    except ImportError as exc:
        return str(exc)
    return None


def c_core_required() -> bool:
    return _cores.extensions_required()


@pytest.fixture(
    scope="session",
    params=(pytest.param(C_IMPL, marks=pytest.mark.c_extension), PURE_IMPL),
    ids=str,
)
def impl(request) -> QueueImplementation:
    """The core under test: the C extension (fastq._core) or the pure-Python twin (fastq.pure)."""
    implementation = request.param
    if not implementation.is_pure_python:
        error = c_core_import_error()
        if error is not None:
            message = f"the C extension {_C_MODULE} is not importable: {error}"
            if c_core_required():
                pytest.fail(f"{message} (FASTQ_REQUIRE_EXTENSIONS=1)", pytrace=False)
            pytest.skip(message)
    return implementation


def pytest_addoption(parser):
    group = parser.getgroup("fastq")
    group.addoption(
        "--c-extensions",  # the default
        action="store_true",
        default=True,
        dest="c_extensions",
        help="Test the C extension core too (the default).",
    )
    group.addoption(
        "--no-c-extensions",
        action="store_false",
        dest="c_extensions",
        help="Deselect the tests of the C extension core (marker c_extension).",
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("c_extensions"):
        return
    selected, deselected = [], []
    for item in items:
        (deselected if item.get_closest_marker("c_extension") else selected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


def pytest_unconfigure(config):
    """At the end of the run, let the pure ProcessQueues some test left with unread items go without
    flushing them: multiprocessing's exit handler would otherwise join their feeder threads, blocked
    on pipes no process reads any more, and the run would never exit (multiprocessing's documented
    "joining processes that use queues" behaviour, here in pytest's own process). The queues
    themselves may be garbage already: their finalizers are what is left, so cancel those."""
    import sys

    queues = sys.modules.get("multiprocessing.queues")
    util = sys.modules.get("multiprocessing.util")
    if queues is None or util is None:
        return
    for finalizer in list(util._finalizer_registry.values()):
        if getattr(finalizer, "_callback", None) is queues.Queue._finalize_join:
            finalizer.cancel()
