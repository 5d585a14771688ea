"""Version of ferrows.

Cargo.toml holds the same number; maturin reads it from there when building,
so the two must change together.
"""

from __future__ import annotations

__all__ = ["__version__", "version"]

__version__ = "0.1.0"

# websockets exposes ``websockets.version.version``; keep the same name.
version = __version__
