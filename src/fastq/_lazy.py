"""Lazy attributes for a package (PEP 562): `import fastq` loads only the cores it uses; the
wrappers (closable, parallel, ...) and fastq.pure load on first touch."""
import sys


def attach(namespace, lazy, submodules=()):
    """__getattr__ and __dir__ for the package whose globals() are `namespace`: each name of
    `lazy` (name -> submodule) is imported from its submodule on first use, and kept; each of
    `submodules` is imported as itself."""
    package = namespace["__name__"]

    def load(submodule):
        name = f"{package}.{submodule}"
        __import__(name)  # not importlib: importing it would cost `import fastq` more than this does
        return sys.modules[name]

    def __getattr__(name):
        if name in lazy:
            value = getattr(load(lazy[name]), name)
        elif name in submodules:
            value = load(name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(lazy) | set(submodules))

    return __getattr__, __dir__
