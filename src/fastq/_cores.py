"""Which cores `fastq` uses: the C extension unless the pure ones are asked for, or it is missing.

Two switches, as aio-libs have them:
- FASTQ_NO_EXTENSIONS=1 at build time skips the C build (a pure package; the build records it in
  fastq/_build_note.py), and at run time makes `fastq` use the pure cores. Either is deliberate, so
  the import is silent. (FASTQ_PURE_PYTHON=1, its older run-time name, still works.)
- FASTQ_REQUIRE_EXTENSIONS=1 at build time makes a failed C build an error instead of a pure
  package, and in the tests makes a missing C core fail them instead of skipping them.
(FASTQ_REQUIRE_C=1, its older test-time name, still works.)

A C extension that is missing by accident (its build failed, or the package was never built) or
that does not import warns once, at `import fastq`, with the reason: pip hides build output unless
the build fails, so the import is where users learn it.
"""
import os


def flag(name):
    return os.environ.get(name, "") not in ("", "0")


def pure_requested():
    """The pure cores asked for at run time."""
    return flag("FASTQ_NO_EXTENSIONS") or flag("FASTQ_PURE_PYTHON")


def extensions_required():
    """A missing C core is an error (tests: a failure, not a skip)."""
    return flag("FASTQ_REQUIRE_EXTENSIONS") or flag("FASTQ_REQUIRE_C")


def c_core():
    """fastq._core, or None for the pure cores (with a warning unless that was asked for)."""
    if pure_requested():
        return None
    try:
        from . import _core
    except ImportError as exc:
        reason = missing_reason(exc)
        if reason is not None:
            import warnings

            from ._log import logger

            logger.warning("%s; using the pure-Python cores", reason)
            warnings.warn(f"fastq: {reason}; using the pure-Python cores (fastq.IMPLEMENTATION == 'python')",
                          RuntimeWarning, stacklevel=3)
        return None
    return _core


def missing_reason(exc):
    """Why the C core did not import, in a sentence; None for a pure build made on purpose."""
    try:
        from ._build_note import C_EXTENSION, REASON
    except ImportError:  # not built by setup.py (a source tree), or built with the C core
        C_EXTENSION, REASON = None, ""
    if C_EXTENSION == "skipped":
        return None
    import importlib.util

    if importlib.util.find_spec(f"{__package__}._core") is None:
        # (not the ImportError's text: for a missing submodule it blames a circular import)
        why = REASON or "no compiled fastq._core in this installation"
        return f"the C extension was not built ({why})"
    return f"the C extension could not be imported ({exc})"
