"""Which core `import fastq` takes, and what it says (fastq/_cores.py): silent when the pure cores
were asked for (FASTQ_NO_EXTENSIONS=1 at build or at run time), one plain warning when the C
extension is missing by accident. Run on a copy of the package without its compiled modules."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fastq

PACKAGE = Path(fastq.__file__).resolve().parent


@pytest.fixture
def pure_copy(tmp_path):
    """A copy of this fastq with no compiled module, as a failed or skipped C build leaves it."""
    shutil.copytree(PACKAGE, tmp_path / "fastq", ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__", "*.c"))
    return tmp_path


def _import(where, env=None, note=None, before=""):
    if note is not None:
        (where / "fastq" / "_build_note.py").write_text(f"C_EXTENSION = {note[0]!r}\nREASON = {note[1]!r}\n")
    code = before + "import warnings; warnings.simplefilter('always'); import fastq; print(fastq.IMPLEMENTATION)"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FASTQ_")}
    out = subprocess.run([sys.executable, "-c", code], cwd=where, capture_output=True, text=True, timeout=60,
                         env={**clean, "PYTHONPATH": str(where), **(env or {})})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "python"
    return out.stderr


def test_an_accidental_pure_install_warns_once_that_the_c_extension_was_not_built(pure_copy):
    err = _import(pure_copy)
    assert err.count("RuntimeWarning") == 1 and "the C extension was not built" in err
    assert "circular import" not in err


def test_the_fallback_is_logged_to_the_fastq_logger(pure_copy):
    err = _import(pure_copy, before="import logging; logging.basicConfig(format='LOG %(name)s %(levelname)s %(message)s'); ")
    assert "LOG fastq WARNING the C extension was not built" in err and "using the pure-Python cores" in err
    assert err.count("RuntimeWarning") == 1


def test_the_warning_carries_the_build_failure(pure_copy):
    err = _import(pure_copy, note=("failed", "building fastq._core failed: CompileError: no compiler"))
    assert "the C extension was not built (building fastq._core failed: CompileError: no compiler)" in err


@pytest.mark.parametrize("how", ["build", "run", "run-old-name"])
def test_a_pure_build_or_run_on_purpose_is_silent(pure_copy, how):
    if how == "build":
        err = _import(pure_copy, note=("skipped", "FASTQ_NO_EXTENSIONS=1 at build time"))
    else:
        err = _import(pure_copy, env={"FASTQ_NO_EXTENSIONS" if how == "run" else "FASTQ_PURE_PYTHON": "1"})
    assert err == ""
