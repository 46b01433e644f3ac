"""Packaging: the cibuildwheel selection, the wheels workflow, the sdist manifest (quick, no build).

Docker is out of reach on our machines, so the wheel matrix is checked the one way cibuildwheel
allows without building: `cibuildwheel --print-build-identifiers` per platform, read from
pyproject.toml. It runs when cibuildwheel 3.x is found (FASTQ_CIBUILDWHEEL=/path/to/cibuildwheel,
else `cibuildwheel` on PATH or importable here; tools/build-wheels provides one) and skips otherwise.
The checks of the checkout's files skip where there is no checkout (tests run from an installed wheel).
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
WORKFLOW = ROOT / ".github" / "workflows" / "wheels.yml"

PYTHONS = ["cp310", "cp311", "cp312", "cp313", "cp313t", "cp314", "cp314t"]
EXPECTED = {
    "linux": {f"{py}-{libc}_{arch}" for py in PYTHONS for libc in ("manylinux", "musllinux")
              for arch in ("x86_64", "aarch64")},
    "macos": {f"{py}-macosx_{arch}" for py in PYTHONS for arch in ("arm64", "x86_64")},
    "windows": {f"{py}-win_amd64" for py in PYTHONS},
}


def _need(path):
    if not path.is_file():
        pytest.skip(f"{path.relative_to(ROOT)} is not here (not a source checkout)")
    return path.read_text(encoding="utf-8")


def _cibuildwheel():
    """The command that runs cibuildwheel, or None."""
    explicit = os.environ.get("FASTQ_CIBUILDWHEEL")
    if explicit:
        return [explicit]
    found = shutil.which("cibuildwheel")
    if found:
        return [found]
    try:
        import cibuildwheel  # noqa: F401
    except ImportError:
        return None
    return [sys.executable, "-m", "cibuildwheel"]


@pytest.fixture(scope="module")
def cibw(tmp_path_factory):
    _need(PYPROJECT)
    cmd = _cibuildwheel()
    if cmd is None:
        pytest.skip("cibuildwheel is not installed (pip install 'cibuildwheel>=3.4,<4'; tools/build-wheels has one)")
    probe = subprocess.run(
        cmd + ["--platform", "linux", "--print-build-identifiers", str(ROOT)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path_factory.mktemp("cibw"),
    )
    said = probe.stdout + probe.stderr
    if probe.returncode != 0 and ("cpython-freethreading" in said or "3.13 free-threading" in said):
        pytest.skip("this cibuildwheel is 4.x, which dropped 3.13t; the configuration targets 3.x (3.4.1 pinned)")
    return cmd


@pytest.mark.parametrize("platform", sorted(EXPECTED))
def test_cibuildwheel_builds_the_documented_matrix(cibw, platform, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIBW_")}
    done = subprocess.run(
        cibw + ["--platform", platform, "--print-build-identifiers", str(ROOT)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    got = set(done.stdout.split())
    missing, extra = EXPECTED[platform] - got, got - EXPECTED[platform]
    assert not missing and not extra, f"{platform}: missing {sorted(missing)}, unexpected {sorted(extra)}"


def test_pyproject_wheel_settings():
    text = _need(PYPROJECT)
    tomllib = pytest.importorskip("tomllib", reason="tomllib is new in 3.11")
    data = tomllib.loads(text)
    cibw = data["tool"]["cibuildwheel"]
    assert cibw["build"] == [f"{py}-*" for py in PYTHONS]
    assert "cpython-freethreading" in cibw["enable"]
    # the tests run against the installed wheel, from copies of tests/ outside the source tree
    assert "pytest" in cibw["test-command"] and "tests" in cibw["test-sources"]
    assert cibw["test-environment"]["FASTQ_REQUIRE_EXTENSIONS"] == "1"
    assert cibw["environment"]["FASTQ_REQUIRE_EXTENSIONS"] == "1"
    assert data["tool"]["setuptools"]["exclude-package-data"]["fastq"] == ["*.c"]
    assert data["project"]["requires-python"] == ">=3.10"


def test_wheels_workflow():
    text = _need(WORKFLOW)
    # tags and pull requests build; a release publishes, with trusted publishing (no token)
    assert re.search(r"^\s*pull_request:", text, re.M) and re.search(r"tags:\s*\[?\s*[\"']?v", text)
    assert re.search(r"^\s*release:", text, re.M)
    assert "pypa/gh-action-pypi-publish" in text and "id-token: write" in text
    assert "password:" not in text and "PYPI_API_TOKEN" not in text
    pins = set(re.findall(r"pypa/cibuildwheel@v(\d+)\.", text))
    assert pins == {"3"}, f"cibuildwheel must be pinned to 3.x (4.x dropped 3.13t): {pins}"
    for runner in ("ubuntu-latest", "ubuntu-24.04-arm", "windows-latest"):
        assert runner in text
    assert "--sdist" in text


def test_sdist_manifest():
    text = _need(ROOT / "MANIFEST.in")
    for line in ("graft tests", "graft examples", "exclude src/fastq/*.c"):
        assert line in text
