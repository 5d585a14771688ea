"""Version of ferrows.

Cargo.toml holds the same number; maturin reads it from there when building,
so the two must change together.

websockets' ``version`` module exposes ``released``, ``tag``, ``version`` and
``commit``; ferrows has the same names so that code (and test suites) reading
them run unchanged. ferrows builds come from tagged versions only, so all
three strings are the version number and ``released`` is true.
"""

from __future__ import annotations

__all__ = ["commit", "released", "tag", "version"]

__version__ = "0.1.0"

# Whether this is a tagged release rather than a development snapshot.
released = True

# websockets exposes ``websockets.version.version``; keep the same names.
tag = version = commit = __version__
