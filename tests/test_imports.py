"""ferrows.imports.lazy_import: names served on first access (PEP 562)."""

from __future__ import annotations

import subprocess
import sys
import types
import warnings

import pytest

from ferrows.imports import lazy_import

served = object()


def namespace(name="ferrows_tests_lazy.child"):
    module = types.ModuleType(name)
    module.__package__ = name
    return module


def test_alias_is_imported_on_first_access_and_cached():
    module = namespace()
    lazy_import(vars(module), aliases={"served": "tests.test_imports"})
    assert "served" not in vars(module)
    assert module.served is served
    assert vars(module)["served"] is served


def test_relative_alias_resolves_against_the_package():
    # In the package "tests.lazy_child", "..test_imports" is tests.test_imports.
    module = namespace("tests.lazy_child")
    lazy_import(vars(module), aliases={"served": "..test_imports", "missing": ".test_imports"})
    assert module.served is served
    with pytest.raises(ModuleNotFoundError, match=r"tests\.lazy_child"):
        _ = module.missing


def test_submodule_alias():
    module = namespace()
    lazy_import(vars(module), aliases={"frames": "ferrows"})
    import ferrows.frames

    assert module.frames is ferrows.frames


def test_deprecated_alias_warns_on_every_access():
    module = namespace()
    lazy_import(vars(module), deprecated_aliases={"served": "tests.test_imports"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert module.served is served
        assert module.served is served
    assert [str(w.message) for w in caught] == ["ferrows_tests_lazy.child.served is deprecated"] * 2
    assert all(w.category is DeprecationWarning for w in caught)


def test_dir_lists_lazy_names():
    module = namespace()
    lazy_import(vars(module), aliases={"a": "x"}, deprecated_aliases={"b": "y"})
    assert [name for name in dir(module) if not name.startswith("__")] == ["a", "b"]


def test_unknown_name():
    module = namespace()
    lazy_import(vars(module))
    with pytest.raises(AttributeError, match=r"^module 'ferrows_tests_lazy.child' has no attribute 'nope'$"):
        _ = module.nope


def test_a_name_defined_twice_is_refused():
    module = namespace()
    with pytest.raises(ValueError, match="defined twice"):
        lazy_import(vars(module), aliases={"a": "x"}, deprecated_aliases={"a": "y"})
    module.b = 1
    with pytest.raises(ValueError, match="defined twice"):
        lazy_import(vars(module), aliases={"b": "x"})


def test_import_ferrows_loads_no_io_layer():
    code = (
        "import sys, ferrows; "
        "assert not any(m.startswith(('ferrows.asyncio', 'ferrows.sync')) for m in sys.modules), sorted(sys.modules); "
        "ferrows.serve; assert 'ferrows.asyncio.server' in sys.modules; print(ferrows.InvalidURI.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "ferrows.exceptions"
