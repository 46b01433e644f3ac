#!/usr/bin/env python3
"""Run the running interpreter's own Lib/test/test_queue.py, unchanged, against fastq's cores.

CPython's test module loads the two flavours of the `queue` module it tests with
`test.support.import_helper.import_fresh_module`: the pure one with blocked=['_queue'] and the C
one with fresh=['_queue']. While importing `test.test_queue` we replace that function so that the
first call returns a module-like namespace built from `fastq.pure` and the second one built from
`fastq._core`. Every Py* test class then runs against the pure core and every C* class against the
C core, exactly as CPython runs them against its own. After each test we check that what it tested
really was fastq's (a namespace mix-up would otherwise pass silently, against the stdlib).

    python tests/cpython_queue_runner.py            # both cores; fails if the C core is missing
    python tests/cpython_queue_runner.py --impl pure    # (or --pure-only) the pure core alone
    python tests/cpython_queue_runner.py --impl c -v -k shutdown

Exit status: 0 when every selected test passed, 1 on any failure or error, 2 when the C core is
required (the default) but cannot be imported. Importable: `run(...)` returns the results.
"""
import argparse
import contextlib
import importlib
import platform
import sys
import time
import types
import unittest

GROUPS = ("pure", "c")
_CLASS_NAMES = ("Queue", "LifoQueue", "PriorityQueue", "SimpleQueue")


def _namespace(name, source, py_simple_queue):
    """A stand-in for the `queue` module, holding `source`'s classes and fastq's exceptions."""
    from fastq import errors

    ns = types.ModuleType(name, f"the queue module's names, from {source.__name__} (fastq's CPython suite runner)")
    for cls_name in _CLASS_NAMES:
        setattr(ns, cls_name, getattr(source, cls_name))
    ns._PySimpleQueue = py_simple_queue
    ns.Empty, ns.Full, ns.ShutDown = errors.Empty, errors.Full, errors.ShutDown
    ns.__all__ = ["Empty", "Full", "ShutDown", *_CLASS_NAMES]
    ns.fastq_source = source.__name__
    return ns


def build_namespaces():
    """(pure namespace, C namespace or None, the C core's ImportError text or None)."""
    import fastq.pure

    pure_ns = _namespace("queue", fastq.pure, fastq.pure.SimpleQueue)
    try:
        core = importlib.import_module("fastq._core")
    except ImportError as exc:
        return pure_ns, None, str(exc)
    return pure_ns, _namespace("queue", core, fastq.pure.SimpleQueue), None


@contextlib.contextmanager
def _fresh_module_substituted(pure_ns, c_ns):
    from test.support import import_helper

    real = import_helper.import_fresh_module
    calls = []

    def import_fresh_module(name, fresh=(), blocked=(), *args, **kwargs):
        if name == "queue" and "_queue" in blocked:
            calls.append("pure")
            return pure_ns
        if name == "queue" and "_queue" in fresh:
            calls.append("c")
            return c_ns  # None makes test_queue skip its C classes, as when _queue is missing
        return real(name, fresh, blocked, *args, **kwargs)

    import_helper.import_fresh_module = import_fresh_module
    try:
        yield calls
    finally:
        import_helper.import_fresh_module = real


def load_test_queue(pure_ns, c_ns):
    """Import a fresh `test.test_queue` with the queue module flavours replaced by fastq's."""
    sys.modules.pop("test.test_queue", None)
    with _fresh_module_substituted(pure_ns, c_ns) as calls:
        module = importlib.import_module("test.test_queue")
    sys.modules.pop("test.test_queue", None)  # nobody else should pick up this doctored copy
    if sorted(calls) != ["c", "pure"]:
        raise RuntimeError(f"test.test_queue did not load the queue module the expected way: {calls}")
    if module.py_queue is not pure_ns or module.c_queue is not c_ns:
        raise RuntimeError("test.test_queue's py_queue/c_queue are not fastq's namespaces")
    return module


def classify(module, pure_ns, c_ns):
    """{'pure': [TestCase classes], 'c': [...]}; a class testing anything else is an error."""
    groups = {group: [] for group in GROUPS}
    for name, obj in sorted(vars(module).items()):
        if not (isinstance(obj, type) and issubclass(obj, unittest.TestCase)):
            continue
        under_test = getattr(obj, "queue", None)
        if under_test is pure_ns:
            groups["pure"].append(obj)
        elif under_test is c_ns and c_ns is not None:
            groups["c"].append(obj)
        elif under_test is None and name.startswith("C") and c_ns is None:
            groups["c"].append(obj)
        else:
            raise RuntimeError(f"{name} tests {under_test!r}, not one of fastq's cores")
    return groups


def _fastq_class_of(test):
    """The class a finished test exercised (None if it set none of the usual attributes)."""
    for attr in ("type2test", "FailingQueue"):
        cls = getattr(test, attr, None)
        if isinstance(cls, type):
            return cls
    q = getattr(test, "q", None)
    return type(q) if q is not None else None


class _CheckedResult(unittest.TextTestResult):
    """Also fails a test whose queue class turns out not to be fastq's own."""

    expected_module = None  # set per group

    def stopTest(self, test):
        cls = _fastq_class_of(test)
        if cls is not None and not any(k.__module__ == self.expected_module for k in cls.__mro__):
            self.failures.append((test, f"tested {cls!r}, which is not from {self.expected_module}"))
        super().stopTest(test)


def _suite(classes, name_patterns):
    loader = unittest.TestLoader()
    if name_patterns:
        loader.testNamePatterns = [p if "*" in p else f"*{p}*" for p in name_patterns]
    suite = unittest.TestSuite()
    for cls in classes:
        suite.addTests(loader.loadTestsFromTestCase(cls))
    return suite


def run(impl="both", verbosity=1, name_patterns=(), failfast=False, stream=None):
    """Run the suite; return {'pure'/'c': unittest result} and the C core's import error (or None)."""
    stream = stream if stream is not None else sys.stderr
    pure_ns, c_ns, c_error = build_namespaces()
    module = load_test_queue(pure_ns, c_ns)
    groups = classify(module, pure_ns, c_ns)
    selected = GROUPS if impl == "both" else (impl,)
    results = {}
    for group in selected:
        if group == "c" and c_ns is None:
            continue
        expected = "fastq.pure._queue" if group == "pure" else "fastq._core"
        result_class = type("CheckedResult", (_CheckedResult,), {"expected_module": expected})
        runner = unittest.TextTestRunner(
            stream=stream, verbosity=verbosity, failfast=failfast, resultclass=result_class
        )
        print(f"--- {group}: {', '.join(cls.__name__ for cls in groups[group])}", file=stream, flush=True)
        results[group] = runner.run(_suite(groups[group], name_patterns))
    return results, c_error, module


def _counts(result):
    return (
        f"ran {result.testsRun}, failures {len(result.failures)}, errors {len(result.errors)}, "
        f"skipped {len(result.skipped)}, unexpected successes {len(result.unexpectedSuccesses)}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--impl", choices=("both", *GROUPS), default="both", help="which core(s) to test")
    parser.add_argument("--pure-only", action="store_const", const="pure", dest="impl",
                        help="test the pure core only (same as --impl pure): a missing C core is then fine")
    parser.add_argument("-v", "--verbose", action="store_const", const=2, default=1, dest="verbosity")
    parser.add_argument("-k", action="append", default=[], dest="patterns", metavar="PATTERN",
                        help="only tests whose name matches (unittest -k), may repeat")
    parser.add_argument("--failfast", action="store_true")
    args = parser.parse_args(argv)

    import fastq

    version = platform.python_version()
    print(f"fastq {fastq.__version__} from {fastq.__file__}", flush=True)
    start = time.monotonic()
    results, c_error, module = run(args.impl, args.verbosity, args.patterns, args.failfast)
    took = time.monotonic() - start
    print(f"\nthe suite: {module.__file__}")

    status = 0
    print(f"\n=== CPython {version} Lib/test/test_queue.py against fastq ({took:.1f} s)")
    for group in GROUPS:
        if group in results:
            result = results[group]
            ok = result.wasSuccessful() and result.testsRun > 0
            status = status or (0 if ok else 1)
            source = "fastq.pure" if group == "pure" else "fastq._core"
            print(f"{group:>4} ({source}): {_counts(result)}: {'OK' if ok else 'FAILED'}")
        elif group == "c" and args.impl in ("both", "c"):
            print(f"   c (fastq._core): NOT RUN: the C core is missing ({c_error})")
            status = 2 if status == 0 else status
    summary = " ".join(
        f"{g}:ran={r.testsRun},failures={len(r.failures)},errors={len(r.errors)},skipped={len(r.skipped)}"
        for g, r in results.items()
    )
    print(f"SUMMARY python={version} {summary} status={status}")
    return status


if __name__ == "__main__":
    sys.exit(main())
