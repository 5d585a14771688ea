"""Names that moved between the Python versions ferrows supports."""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    from asyncio import timeout as asyncio_timeout
    from builtins import ExceptionGroup
else:  # pragma: no cover - Python 3.10
    from async_timeout import timeout as asyncio_timeout
    from exceptiongroup import ExceptionGroup

__all__ = ["ExceptionGroup", "asyncio_timeout"]
