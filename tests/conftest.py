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

from hypothesis import settings  # noqa: E402

# Property tests draw the same examples on every run, so that the test
# command passes or fails the same way on every machine. To search new
# random examples: HYPOTHESIS_PROFILE=explore python -m pytest
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


import logging  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from redis_server import RedisServer  # noqa: E402


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fails the test if any logger (ferrows, asyncio's exception handler...)
    logged an error or a traceback while it ran: a server facing the internet
    logs one line per bad client at most, never a stack.

    The check runs at teardown, so it reads the records of the setup and call
    phases (``caplog.records`` there would hold only the teardown's).
    """
    caplog.set_level(logging.INFO)
    yield
    records = caplog.get_records("setup") + caplog.get_records("call")
    bad = [r for r in records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [f"{r.name}: {r.getMessage()}" for r in bad]


@pytest.fixture(scope="module")
def redis_server():
    """A real redis-server on 127.0.0.1 for the tests of a module, stopped by its pid."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
