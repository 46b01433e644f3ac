"""Sphinx configuration for fastq's reference manual.

Build (warnings are errors, as in .ci/run):

    pip install -e '.[docs]'
    sphinx-build -W --keep-going -b html docs docs/_build/html

autodoc imports the installed fastq, so the pages document the compiled modules' docstrings (the
C cores) where they are built, and the pure twins otherwise. Public names are documented as
`fastq.X`, whatever module defines them.
"""
import re

import fastq

project = "fastq"
author = "fastq developers"
copyright = "fastq developers"
release = fastq.__version__
version = ".".join(release.split(".")[:2])

extensions = ["sphinx.ext.autodoc"]

# docs/ also holds the benchmark report (bench.md) and the design documents (design/*.md), which
# are markdown read on GitHub: only .rst files are pages of the manual.
source_suffix = {".rst": "restructuredtext"}
exclude_patterns = ["_build", "design"]
root_doc = "index"

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "signature"
autoclass_content = "class"

html_theme = "alabaster"
html_title = f"fastq {release}"
html_theme_options = {"description": "Drop-in, C-accelerated queues for Python", "fixed_sidebar": True}

# The docstrings follow CPython's queue.py: plain text, with `name` for code and signatures such
# as put(func, *args, **kwargs) written out. In reST a bare *args or **kwargs opens emphasis that
# never closes (a warning, so an error under -W): escape those stars, outside `code` spans only.
_BARE_STARS = re.compile(r"(?<![\w*\\])(\*\*?)(?=[A-Za-z_])")


def _escape_stars(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        if "*" in line:
            parts = line.split("`")
            parts[::2] = [_BARE_STARS.sub(lambda m: "\\*" * len(m.group(1)), p) for p in parts[::2]]
            lines[i] = "`".join(parts)


# Parameters whose names start with an underscore (ParallelQueue's _start, for tests) are not part
# of the public signature.
_PRIVATE_PARAM = re.compile(r",\s*_\w+(?:\s*:\s*[^,=()\[\]]+)?(?:\s*=\s*[^,()]+)?(?=[,)])")


def _drop_private_params(app, what, name, obj, options, signature, return_annotation):
    if signature:
        return _PRIVATE_PARAM.sub("", signature), return_annotation
    return None


def setup(app):
    app.connect("autodoc-process-docstring", _escape_stars)
    app.connect("autodoc-process-signature", _drop_private_params)
