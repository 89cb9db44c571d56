"""The garbage collector settings `scangate serve` (and the benchmark) apply."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from app.gc_tuning import FIRST_GENERATION_THRESHOLD, tune_garbage_collector


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    long_lived = [object() for _ in range(1000)]

    tune_garbage_collector()

    # Everything alive at the call (the modules, this test's objects) is out of the
    # collector's view from now on.
    assert gc.get_freeze_count() > len(long_lived)
    assert gc.get_threshold()[0] == FIRST_GENERATION_THRESHOLD
    assert gc.isenabled()
