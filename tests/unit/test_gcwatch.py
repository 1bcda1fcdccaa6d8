"""The collector's tuning and pause watch (callcenter/gcwatch.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from callcenter import gcwatch
from callcenter.gcwatch import GcWatch


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


@pytest.fixture
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restore_gc")
def test_tune_takes_start_up_objects_out_of_every_later_collection() -> None:
    start_up = [Node() for _ in range(2_000)]
    gc.collect()
    assert {id(n) for n in start_up} <= {id(o) for o in gc.get_objects(generation=2)}
    gcwatch.tune()
    scanned = {id(o) for gen in range(3) for o in gc.get_objects(generation=gen)}
    assert not {id(n) for n in start_up} & scanned  # frozen: no collection scans them
    assert gc.get_freeze_count() >= len(start_up)
    assert gc.get_threshold()[0] == gcwatch.GEN0


def test_the_watch_counts_each_collection_and_keeps_the_slow_ones() -> None:
    watch = GcWatch(slow=0.0)  # every pause counts as slow here
    watch.install()
    watch.install()  # once only
    try:
        garbage = [Node() for _ in range(1_000)]
        del garbage
        gc.collect()
    finally:
        watch.remove()
    assert watch.collections >= 1
    assert watch.seconds >= watch.pause_max >= 0.0
    slow = watch.take_slow()
    assert any(generation == 2 and collected >= 1_000 for generation, _, collected in slow)
    assert watch.take_slow() == []
    before = watch.collections
    gc.collect()
    assert watch.collections == before  # removed: no longer called
