"""Lazy attributes for a package (PEP 562): `import fastq` loads only the cores it uses; the
wrappers (closable, parallel, ...) and fastq.pure load on first touch."""
from __future__ import annotations

import sys
from types import ModuleType

TYPE_CHECKING = False
if TYPE_CHECKING:  # (typing is not imported at run time: fastq/_typing.py)
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any


def attach(namespace: dict[str, Any], lazy: Mapping[str, str],
           submodules: Iterable[str] = ()) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """__getattr__ and __dir__ for the package whose globals() are `namespace`: each name of
    `lazy` (name -> submodule) is imported from its submodule on first use, and kept; each of
    `submodules` is imported as itself."""
    package = namespace["__name__"]
    submodules = tuple(submodules)

    def load(submodule: str) -> ModuleType:
        name = f"{package}.{submodule}"
        __import__(name)  # not importlib: importing it would cost `import fastq` more than this does
        return sys.modules[name]

    def __getattr__(name: str) -> Any:
        if name in lazy:
            value = getattr(load(lazy[name]), name)
        elif name in submodules:
            value = load(name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(lazy) | set(submodules))

    return __getattr__, __dir__
