"""ferrows._core.Fifo, the asyncio connection's receive queue, behaves as
the part of collections.deque that the connection uses."""

from __future__ import annotations

import collections
import gc
import random
import weakref

import pytest

from ferrows._core import Fifo


def test_same_as_deque_under_random_operations() -> None:
    rng = random.Random(6455)
    fifo: Fifo[int] = Fifo()
    deque: collections.deque[int] = collections.deque()
    for step in range(5000):
        op = rng.random()
        if op < 0.45:
            fifo.append(step)
            deque.append(step)
        elif op < 0.85:
            if deque:
                assert fifo.popleft() == deque.popleft()
            else:
                with pytest.raises(IndexError):
                    fifo.popleft()
        elif op < 0.95:
            items = list(range(step, step + rng.randrange(4)))
            fifo.extendleft(reversed(items))
            deque.extendleft(reversed(items))
        else:
            fifo.clear()
            deque.clear()
        assert len(fifo) == len(deque)
        assert bool(fifo) is bool(deque)
        if deque:
            assert fifo[0] == deque[0] and fifo[-1] == deque[-1]
    assert list(fifo) == list(deque)


def test_construction_indexing_and_repr() -> None:
    fifo = Fifo(["a", b"b"])
    assert list(fifo) == ["a", b"b"]
    assert fifo[1] == b"b" and fifo[-2] == "a"
    for index in (2, -3):
        with pytest.raises(IndexError):
            fifo[index]
    assert repr(fifo) == "Fifo(['a', b'b'])"
    assert not Fifo()


def test_iteration_is_a_snapshot() -> None:
    fifo = Fifo([1, 2])
    seen = []
    for item in fifo:
        seen.append(item)
        fifo.append(item + 10)  # would break a deque's iterator
    assert seen == [1, 2]
    assert list(fifo) == [1, 2, 11, 12]


def test_extendleft_of_a_generator_that_uses_the_queue() -> None:
    fifo = Fifo([0])

    def items() -> object:
        yield fifo.popleft() + 1
        yield 2

    fifo.extendleft(items())  # type: ignore[arg-type]
    assert list(fifo) == [2, 1]


def test_reference_cycles_through_it_are_collected() -> None:
    class Holder:
        pass

    holder = Holder()
    fifo: Fifo[object] = Fifo()
    fifo.append(holder)
    holder.fifo = fifo  # type: ignore[attr-defined]
    ref = weakref.ref(holder)
    del holder, fifo
    gc.collect()
    assert ref() is None
