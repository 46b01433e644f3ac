"""Build the C cores. FASTQ_NO_EXTENSIONS=1 builds a pure-Python package (the pure cores only).

A C build that fails (no compiler, no Python headers, a platform the C code does not support yet)
does not fail the install: the extension is left out with a warning and fastq runs on the pure
cores (fastq.IMPLEMENTATION == "python", and fastq warns once at import that the C extension was not
built, with the reason). FASTQ_REQUIRE_EXTENSIONS=1 turns that fallback back into an error: wheel
builds (cibuildwheel, tools/build-wheels) set it. So does an in-place or editable build (`pip install
-e .`): a developer wants the compiler's error, not a stale extension left beside the sources.

Either way without the C core, the build writes fastq/_build_note.py into the package it builds:
"skipped" (FASTQ_NO_EXTENSIONS=1: a pure package on purpose, so `import fastq` stays silent) or
"failed" with the compiler's reason (which `import fastq` repeats in its warning). fastq/_cores.py
reads it.
"""
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py


def _env_flag(name):
    return os.environ.get(name, "") not in ("", "0")


_FALLBACK_NOTE = (
    "fastq: the C extension {what} could not be built ({why}); installing without it: fastq will use "
    "its pure-Python cores (fastq.IMPLEMENTATION == 'python'). Set FASTQ_REQUIRE_EXTENSIONS=1 to make "
    "this an error, FASTQ_NO_EXTENSIONS=1 to skip the C build on purpose."
)


_failed = []  # why the C build fell back before any build command ran (Cython missing, say)


def _fall_back(what, exc, strict=False, build_lib=None):
    if strict or _env_flag("FASTQ_REQUIRE_EXTENSIONS"):
        raise exc
    why = f"{type(exc).__name__}: {exc}"
    banner = "*" * 78
    print(f"\n{banner}\nWARNING: {_FALLBACK_NOTE.format(what=what, why=why)}\n{banner}\n", file=sys.stderr, flush=True)
    why = " ".join(why.split())
    if len(why) > 160:  # a compiler's whole command line: its head and the verdict at its end
        why = f"{why[:90]} ... {why[-60:]}"
    reason = f"building {what} failed: {why}"
    if build_lib is None:
        _failed.append(reason)
    elif not os.path.exists(_note_path(build_lib)):  # the first failure (fastq._core's, built first) tells most
        _write_build_note(build_lib, "failed", reason)


def _note_path(build_lib):
    return os.path.join(build_lib, "fastq", "_build_note.py")


def _write_build_note(build_lib, outcome, reason):
    """fastq/_build_note.py in the package being built: why it has no C core (fastq/_cores.py reads it);
    outcome None removes a stale one."""
    path = _note_path(build_lib)
    if outcome is None:
        if os.path.exists(path):
            os.remove(path)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f'"""Written by setup.py: this package was built without its C core."""\n'
                f"C_EXTENSION = {outcome!r}\nREASON = {reason!r}\n")


class build_py_with_note(build_py):
    """build_py that records a package built without its C core on purpose (FASTQ_NO_EXTENSIONS=1:
    `import fastq` stays silent) or because Cython was missing (it warns, with that reason); a C
    build that fails later records itself (optional_build_ext)."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install imports the source tree, where no note belongs
        if _env_flag("FASTQ_NO_EXTENSIONS"):
            _write_build_note(self.build_lib, "skipped", "FASTQ_NO_EXTENSIONS=1 at build time")
        elif _failed:
            _write_build_note(self.build_lib, "failed", _failed[0])
        else:
            _write_build_note(self.build_lib, None, "")


class optional_build_ext(build_ext):
    """build_ext whose failures leave the extension out (with a warning) instead of failing the install."""

    def _in_place(self):
        return bool(self.inplace or getattr(self, "editable_mode", False))

    def run(self):
        try:
            super().run()
        except Exception as exc:  # no compiler at all (DistutilsPlatformError on Windows), and the like
            _fall_back("modules", exc, strict=self._in_place(), build_lib=self.build_lib)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # CompileError, LinkError, DistutilsExecError, a missing header...
            _fall_back(ext.name, exc, strict=self._in_place(), build_lib=self.build_lib)


ext_modules = []
if not _env_flag("FASTQ_NO_EXTENSIONS"):
    try:
        from Cython.Build import cythonize
    except ImportError as exc:  # built without build isolation, and no Cython installed
        _fall_back("modules", exc)
        cythonize = None

    extra_compile_args = []
    if sys.platform != "win32":
        extra_compile_args = ["-O3", "-std=c11", "-Wall", "-Wno-unused-function"]
    # FASTQ_SANITIZE=1 is for tools/sanitize: it builds with ASan+UBSan, keeps frames, and compiles
    # in the crash points (tests/test_crashpoints.py: the ring stops dead at its Nth shared store).
    extra_link_args = []
    if os.environ.get("FASTQ_SANITIZE"):
        flags = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-O1", "-g"]
        extra_compile_args += flags + ["-DFASTQ_CRASHPOINTS"]
        extra_link_args += flags
    def extension(name):
        return Extension(
            f"fastq.{name}",
            [f"src/fastq/{name}.pyx"],
            include_dirs=["src/fastq/_c"],
            extra_compile_args=extra_compile_args,
            extra_link_args=extra_link_args,
        )

    # The shared-memory ring (ProcessQueue) is Linux-first: elsewhere fastq uses the pure twin.
    names = ["_core"] + (["_shm"] if sys.platform.startswith("linux") else [])
    if cythonize is not None:
        try:
            ext_modules = cythonize(
                [extension(name) for name in names],
                compiler_directives={"language_level": 3},
            )
        except Exception as exc:  # a Cython too old or too new for the sources
            _fall_back("modules", exc)

setup(ext_modules=ext_modules, cmdclass={"build_ext": optional_build_ext, "build_py": build_py_with_note})
