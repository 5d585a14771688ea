"""websockets' ``speedups`` module: masking in native code.

In websockets it is an optional C extension; ferrows' Rust core always
provides the same function, so code importing it finds it.
"""

from __future__ import annotations

from .utils import apply_mask

__all__ = ["apply_mask"]
