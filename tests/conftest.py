"""Shared test configuration.

``tests`` is a package so that ``tests/asyncio`` (named after the module it
tests, like websockets' own suite) does not shadow the standard library's
``asyncio``. Helpers at the top level (``frame_utils``) stay importable by
their plain name: the directory goes at the end of ``sys.path``, after the
standard library.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.append(_HERE)
