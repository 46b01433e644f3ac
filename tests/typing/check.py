"""fastq's type checks, as CI runs them (.ci/run) and tests/test_typing.py calls them:

1. `mypy --strict` over user_program.py (the whole public API, used correctly: no error at all)
   and bad_program.py (wrong uses: exactly the errors its `# E: <code>` markers name, on their
   lines, and no other);
2. `python -m mypy.stubtest fastq`: the stubs of the compiled modules (_core.pyi, _shm.pyi) and the
   annotations of the Python ones against the installed package at run time, with the entries of
   stubtest-allowlist.txt (each one says why it cannot match).

Both check the fastq that `python` imports (the installed package, its .pyi files and py.typed),
not the source tree. Usage: python tests/typing/check.py [mypy|stubtest]; exit status 0 when all pass.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
USER_PROGRAM = os.path.join(HERE, "user_program.py")
BAD_PROGRAM = os.path.join(HERE, "bad_program.py")
MYPY_INI = os.path.join(HERE, "mypy.ini")
STUBTEST_INI = os.path.join(HERE, "stubtest.ini")
ALLOWLIST = os.path.join(HERE, "stubtest-allowlist.txt")

_ERROR = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): error: (?P<message>.*?)(?:  \[(?P<code>[a-z0-9-]+)\])?$")
_MARKER = re.compile(r"#\s*E:\s*(?P<codes>[a-z0-9-]+(?:\s*,\s*[a-z0-9-]+)*)\s*$")


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    # From an empty directory: no configuration of the checkout applies, the source tree is not
    # on the path (the installed fastq is what gets checked), and mypy's cache lands there, not in
    # tests/ (which the sdist ships). The stubs describe the C build: fastq runs on its C cores
    # here whatever the environment asked for.
    env = {name: value for name, value in os.environ.items()
           if name not in ("FASTQ_NO_EXTENSIONS", "FASTQ_PURE_PYTHON")}
    with tempfile.TemporaryDirectory(prefix="fastq-typing-") as cwd:
        return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd,
                              env={**env, "PYTHONPATH": ""})


def expected_errors(path: str) -> set[tuple[int, str]]:
    """(line, error code) for each `# E: code[, code]` marker in the file."""
    expected = set()
    with open(path, encoding="utf-8") as f:
        for number, text in enumerate(f, 1):
            match = _MARKER.search(text)
            if match:
                expected.update((number, code.strip()) for code in match["codes"].split(","))
    return expected


def mypy_errors() -> tuple[str, dict[str, set[tuple[int, str]]]]:
    """Run mypy --strict over both programs: its output, and (line, code) of the errors per file."""
    result = _run(["-m", "mypy", "--strict", "--config-file", MYPY_INI, "--no-error-summary",
                   "--hide-error-context", "--no-pretty", "--show-error-codes", USER_PROGRAM, BAD_PROGRAM])
    if result.returncode not in (0, 1) or result.stderr.strip():
        raise RuntimeError(f"mypy failed to run (exit {result.returncode}):\n{result.stdout}{result.stderr}")
    errors: dict[str, set[tuple[int, str]]] = {USER_PROGRAM: set(), BAD_PROGRAM: set()}
    for text in result.stdout.splitlines():
        match = _ERROR.match(text)
        if match:
            path = os.path.join(HERE, match["path"]) if not os.path.isabs(match["path"]) else match["path"]
            errors.setdefault(os.path.normpath(path), set()).add((int(match["line"]), match["code"] or "?"))
    return result.stdout, errors


def check_mypy() -> list[str]:
    """The problems found: [] when user_program.py is clean and bad_program.py's errors are exactly its markers."""
    output, errors = mypy_errors()
    problems = []
    unexpected_files = set(errors) - {USER_PROGRAM, BAD_PROGRAM}
    for path in sorted(unexpected_files):
        problems.append(f"errors in {path}, which was not checked on purpose")
    for line, code in sorted(errors[USER_PROGRAM]):
        problems.append(f"user_program.py:{line}: unexpected error [{code}]")
    expected = expected_errors(BAD_PROGRAM)
    for line, code in sorted(errors[BAD_PROGRAM] - expected):
        problems.append(f"bad_program.py:{line}: unexpected error [{code}]")
    for line, code in sorted(expected - errors[BAD_PROGRAM]):
        problems.append(f"bad_program.py:{line}: expected error [{code}] not reported")
    if problems:
        problems.append("mypy said:\n" + output)
    return problems


def check_stubtest() -> list[str]:
    """The problems found: [] when stubtest passes (with the allowlist)."""
    result = _run(["-m", "mypy.stubtest", "fastq", "--mypy-config-file", STUBTEST_INI, "--allowlist", ALLOWLIST])
    if result.returncode == 0:
        return []
    return [f"stubtest failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"]


def main(argv: list[str]) -> int:
    checks = {"mypy": check_mypy, "stubtest": check_stubtest}
    names = argv or list(checks)
    failed = False
    for name in names:
        problems = checks[name]()
        if problems:
            failed = True
            print(f"{name}: FAILED")
            for problem in problems:
                print("  " + problem.replace("\n", "\n  "))
        elif name == "mypy":
            print(f"mypy --strict: user_program.py clean; bad_program.py: the {len(expected_errors(BAD_PROGRAM))} "
                  "expected errors and no other")
        else:
            print("stubtest: fastq matches its stubs and annotations")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
