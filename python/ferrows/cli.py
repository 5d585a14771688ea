"""``websockets.cli``'s name for ferrows' command line (:mod:`ferrows.__main__`).

websockets documents ``websockets.cli.main`` as its interactive client's
entry point; it returns nothing and exits with :exc:`SystemExit` on failure.
ferrows' :func:`ferrows.__main__.main` returns the exit status instead (for
its console script), so this module adapts the convention and nothing else.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .__main__ import main as _main

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``).

    Raises:
        SystemExit: With the exit status, when it isn't 0.
    """
    status = _main(argv)
    if status:
        sys.exit(status)
