"""Fixtures for the asyncio layer: every test runs on asyncio's default event
loop and on uvloop, since ferrows plugs into the loop's transports and the
two implement flow control and EOF differently."""

from __future__ import annotations

import asyncio

import uvloop


def pytest_asyncio_loop_factories(config, item):
    """pytest-asyncio (1.x) parametrises each async test over these loops."""
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
