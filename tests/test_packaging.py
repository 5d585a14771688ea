"""What a release ships: one stable-ABI wheel for every supported CPython,
and a source distribution that carries the license.

The wheel checks read the installed package, which CI builds as a release
wheel when it runs ``pip install .``, so they cost no build of their own.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import ferrows._core

ROOT = Path(__file__).resolve().parents[1]


def pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def abi3_floor() -> tuple[int, int]:
    """The oldest CPython the extension is built for, from PyO3's
    ``abi3-pyXY`` feature in Cargo.toml."""
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    features = cargo["dependencies"]["pyo3"]["features"]
    (floor,) = [feature for feature in features if feature.startswith("abi3-py")]
    return 3, int(floor.removeprefix("abi3-py3"))


def test_installed_wheel_is_abi3():
    wheel = importlib.metadata.distribution("ferrows").read_text("WHEEL")
    assert wheel is not None
    tags = re.findall(r"^Tag: (\S+)$", wheel, re.MULTILINE)
    major, minor = abi3_floor()
    assert tags, wheel
    assert all(tag.startswith(f"cp{major}{minor}-abi3-") for tag in tags), tags
    # The extension itself is the limited-API build, loadable by any later
    # CPython: CPython looks for "*.abi3.so" after its own tag.
    if sys.platform != "win32":
        assert Path(ferrows._core.__file__).name.startswith("_core.abi3."), ferrows._core.__file__


def test_supported_versions_agree():
    """requires-python, the classifiers and the stable ABI's floor name the
    same oldest version, and this interpreter is one of them."""
    project = pyproject()["project"]
    assert isinstance(project, dict)
    major, minor = abi3_floor()
    assert project["requires-python"] == f">={major}.{minor}"
    versions = sorted(
        tuple(int(part) for part in classifier.rsplit(" :: ", 1)[1].split("."))
        for classifier in project["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", classifier)
    )
    assert versions[0] == (major, minor)
    assert sys.version_info[:2] >= (major, minor)


def test_sdist_carries_license_and_metadata(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "maturin", "sdist", "--out", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    (archive,) = tmp_path.glob("ferrows-*.tar.gz")
    top = archive.name.removesuffix(".tar.gz")
    with tarfile.open(archive) as sdist:
        names = set(sdist.getnames())
        license_file = sdist.extractfile(f"{top}/LICENSE")
        pkg_info_file = sdist.extractfile(f"{top}/PKG-INFO")
        assert license_file is not None and pkg_info_file is not None
        license_text = license_file.read().decode()
        pkg_info = pkg_info_file.read().decode()
    assert license_text == (ROOT / "LICENSE").read_text()
    project = pyproject()["project"]
    assert isinstance(project, dict)
    headers = pkg_info.split("\n\n", 1)[0].splitlines()
    assert f"License-Expression: {project['license']}" in headers
    assert "License-File: LICENSE" in headers
    assert f"Requires-Python: {project['requires-python']}" in headers
    for label, url in project.get("urls", {}).items():
        assert f"Project-URL: {label}, {url}" in headers
    # What builds the extension travels with it; build output does not.
    assert {f"{top}/Cargo.toml", f"{top}/Cargo.lock", f"{top}/rust/lib.rs", f"{top}/python/ferrows/_core.pyi"} <= names
    assert not [name for name in names if name.endswith((".so", ".pyd")) or "/target/" in name]
