"""flink_jobs.worker_gc: survivors of full collections are frozen; new cycles are still collected."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from flink_jobs.worker_gc import freeze_survivors_of_full_collections, stop_freezing


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture
def freezing() -> Iterator[None]:
    gc.unfreeze()
    freeze_survivors_of_full_collections()
    try:
        yield
    finally:
        stop_freezing()


@pytest.mark.usefixtures("freezing")
def test_survivors_are_frozen_and_later_cycles_still_collected() -> None:
    frozen = gc.get_freeze_count()
    assert frozen > 0  # the interpreter's own objects, frozen by the first collection

    survivors = [Node() for _ in range(1000)]
    gc.collect()
    assert gc.get_freeze_count() >= frozen + len(survivors)  # frozen after the next full collection

    garbage = cycle()  # a cycle formed after the last full collection
    assert garbage() is not None
    gc.collect()
    assert garbage() is None


@pytest.mark.usefixtures("freezing")
def test_installing_twice_keeps_one_callback_and_stopping_unfreezes() -> None:
    freeze_survivors_of_full_collections()  # the worker's open() runs again after a failover
    assert sum(cb.__name__ == "_freeze_after_full" for cb in gc.callbacks) == 1
    stop_freezing()
    assert gc.get_freeze_count() == 0
    assert all(cb.__name__ != "_freeze_after_full" for cb in gc.callbacks)
