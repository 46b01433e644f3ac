"""Build the C cores. FASTQ_NO_EXTENSIONS=1 builds a pure-Python package (the pure cores only).

A C build that fails (no compiler, no Python headers, a platform the C code does not support yet)
does not fail the install: the extension is left out with a warning and fastq runs on the pure
cores (fastq.IMPLEMENTATION == "python", and fastq warns once at import). FASTQ_REQUIRE_EXTENSIONS=1
turns that fallback back into an error: wheel builds (cibuildwheel, tools/build-wheels) set it. So
does an in-place or editable build (`pip install -e .`): a developer wants the compiler's error, not a
stale extension left beside the sources.
"""
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _env_flag(name):
    return os.environ.get(name, "") not in ("", "0")


_FALLBACK_NOTE = (
    "fastq: the C extension {what} could not be built ({why}); installing without it: fastq will use "
    "its pure-Python cores (fastq.IMPLEMENTATION == 'python'). Set FASTQ_REQUIRE_EXTENSIONS=1 to make "
    "this an error, FASTQ_NO_EXTENSIONS=1 to skip the C build on purpose."
)


def _fall_back(what, exc, strict=False):
    if strict or _env_flag("FASTQ_REQUIRE_EXTENSIONS"):
        raise exc
    banner = "*" * 78
    print(f"\n{banner}\nWARNING: {_FALLBACK_NOTE.format(what=what, why=f'{type(exc).__name__}: {exc}')}\n{banner}\n",
          file=sys.stderr, flush=True)


class optional_build_ext(build_ext):
    """build_ext whose failures leave the extension out (with a warning) instead of failing the install."""

    def _in_place(self):
        return bool(self.inplace or getattr(self, "editable_mode", False))

    def run(self):
        try:
            super().run()
        except Exception as exc:  # no compiler at all (DistutilsPlatformError on Windows), and the like
            _fall_back("modules", exc, strict=self._in_place())

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # CompileError, LinkError, DistutilsExecError, a missing header...
            _fall_back(ext.name, exc, strict=self._in_place())


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
    # FASTQ_SANITIZE=1 is for tools/sanitize: it builds with ASan+UBSan and keeps frames.
    extra_link_args = []
    if os.environ.get("FASTQ_SANITIZE"):
        flags = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-O1", "-g"]
        extra_compile_args += flags
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

setup(ext_modules=ext_modules, cmdclass={"build_ext": optional_build_ext})
