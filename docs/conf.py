"""Sphinx configuration for ferrows' documentation.

The API reference is generated from the docstrings of the installed package
(``pip install ".[docs]"`` or ``maturin develop``): autodoc imports
``ferrows``, including its compiled core, so the package must be built first.
Nothing is fetched at build time: no intersphinx, no remote assets.
"""

from __future__ import annotations

import ferrows

project = "ferrows"
author = "the ferrows authors"
copyright = "the ferrows authors"
release = ferrows.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

# Google-style docstrings (Args:, Raises:, Returns:), as the package writes them.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_default_options = {"members": True}
# Every reference to ferrows must resolve, or -W fails the build. References to
# the standard library and other packages cannot resolve without intersphinx,
# which needs the network: they stay plain text.
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r"(?!ferrows\.).*")]

exclude_patterns = ["_build"]
templates_path: list[str] = []
html_static_path: list[str] = []

html_theme = "furo"
html_title = f"ferrows {release}"
