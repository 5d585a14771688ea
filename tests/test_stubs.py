"""The type stubs of the Rust extension match what it exports."""

from __future__ import annotations

import subprocess
import sys


def test_core_stub_matches_runtime():
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "ferrows._core"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_package_is_typed():
    import importlib.resources

    assert importlib.resources.files("ferrows").joinpath("py.typed").is_file()
    assert importlib.resources.files("ferrows").joinpath("_core.pyi").is_file()
