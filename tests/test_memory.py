"""When the servers give freed heap memory back (ferrows.memory)."""

from __future__ import annotations

import pytest

from ferrows import _core, memory
from ferrows.memory import TRIM_MIN_CLOSED, release_after_closes


@pytest.fixture
def trims(monkeypatch: pytest.MonkeyPatch) -> list[None]:
    calls: list[None] = []
    monkeypatch.setattr(_core, "release_memory", lambda: calls.append(None) or True)
    assert memory._core is _core
    return calls


@pytest.mark.parametrize(
    ("closed", "live", "trimmed"),
    [
        (0, 0, False),
        (TRIM_MIN_CLOSED - 1, 0, False),
        (TRIM_MIN_CLOSED, 0, True),
        (2000, 0, True),
        # Many connections still held: the walk of their heap waits until as
        # many have closed.
        (TRIM_MIN_CLOSED, 10_000, False),
        (10_000, 10_000, True),
    ],
)
def test_trims_after_many_closes(trims: list[None], closed: int, live: int, trimmed: bool) -> None:
    assert release_after_closes(closed, live) == (0 if trimmed else closed)
    assert len(trims) == int(trimmed)


def test_a_burst_trims_once(trims: list[None]) -> None:
    # One sweep per second: 2000 connections reset at once, then quiet.
    closed = 0
    for closes in [2000, 0, 0, 3, 0]:
        closed = release_after_closes(closed + closes, 0)
    assert len(trims) == 1
    assert closed == 3
