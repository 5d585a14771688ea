"""ferrows.sync.utils.Deadline: one limit over several blocking steps."""

from __future__ import annotations

import time

import pytest

from ferrows.sync.utils import Deadline


def test_time_left_shrinks_and_stays_below_the_timeout():
    deadline = Deadline(10.0)
    first = deadline.timeout()
    assert first is not None and 0 < first <= 10.0
    time.sleep(0.01)
    second = deadline.timeout()
    assert second is not None and second < first


def test_passed_deadline_raises_its_message():
    deadline = Deadline(-0.001, message="timed out while waiting for handshake response")
    with pytest.raises(TimeoutError, match=r"^timed out while waiting for handshake response$"):
        deadline.timeout()


def test_passed_deadline_without_raising_is_negative():
    remaining = Deadline(-1.0).timeout(raise_if_elapsed=False)
    assert remaining is not None and -1.5 < remaining < -1.0


def test_no_limit():
    assert Deadline(None).timeout() is None
    assert Deadline(None).timeout(raise_if_elapsed=False) is None


def test_default_message_is_websockets():
    with pytest.raises(TimeoutError, match=r"^timed out$"):
        Deadline(0).timeout()
