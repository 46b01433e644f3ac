"""Build the C cores. FASTQ_NO_EXTENSIONS=1 builds a pure-Python package (the pure cores only)."""
import os
import sys

from setuptools import Extension, setup

ext_modules = []
if os.environ.get("FASTQ_NO_EXTENSIONS", "") in ("", "0"):
    from Cython.Build import cythonize

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
    ext_modules = cythonize(
        [extension(name) for name in names],
        compiler_directives={"language_level": 3},
    )

setup(ext_modules=ext_modules)
