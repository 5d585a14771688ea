"""Lazy module attributes (:pep:`562`), as websockets provides them.

``import ferrows`` must stay cheap: the asyncio, threading and routing layers
load only when one of their names is first used. :func:`lazy_import` installs
a module's ``__getattr__`` and ``__dir__`` from a table of where each name
lives, and can mark some names deprecated (a :class:`DeprecationWarning` on
access).
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["lazy_import"]


def import_name(name: str, source: str, package: str | None) -> Any:
    """``name`` from the module ``source`` (absolute, or relative to ``package``).

    ``name`` is an attribute of ``source`` or, failing that, a submodule of it.
    """
    module = importlib.import_module(importlib.util.resolve_name(source, package))
    try:
        return getattr(module, name)
    except AttributeError:
        return importlib.import_module(f"{module.__name__}.{name}")


def lazy_import(
    namespace: dict[str, Any],
    aliases: Mapping[str, str] | None = None,
    deprecated_aliases: Mapping[str, str] | None = None,
) -> None:
    """Serve the names of ``aliases`` and ``deprecated_aliases`` lazily in ``namespace``.

    Each table maps a name to the module it is imported from (``".asyncio.client"``
    relative to the module whose ``globals()`` is ``namespace``). The imported
    value is not cached in the namespace for deprecated names, so that every
    access warns, as websockets does.
    """
    aliases = dict(aliases or {})
    deprecated = dict(deprecated_aliases or {})
    if set(aliases) & set(deprecated) or (set(aliases) | set(deprecated)) & set(namespace):
        raise ValueError("a lazily imported name is defined twice")
    module_name = namespace["__name__"]
    package = namespace.get("__package__") or module_name

    def __getattr__(name: str) -> Any:
        source = aliases.get(name)
        if source is not None:
            value = import_name(name, source, package)
            namespace[name] = value
            return value
        source = deprecated.get(name)
        if source is not None:
            warnings.warn(f"{module_name}.{name} is deprecated", DeprecationWarning, stacklevel=2)
            return import_name(name, source, package)
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

    def __dir__() -> Iterable[str]:
        return sorted(set(namespace) | set(aliases) | set(deprecated))

    namespace["__getattr__"] = __getattr__
    namespace["__dir__"] = __dir__
