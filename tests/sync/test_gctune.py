"""The collector tuning of a run is undone when the run ends, also when it fails or when
runs overlap."""

from __future__ import annotations

import gc

import pytest

from sync import gctune


def test_tuned_for_the_run_and_restored() -> None:
    before = gc.get_threshold()
    with gctune.tuned():
        assert gc.get_threshold()[0] == gctune.YOUNG_THRESHOLD
        assert gc.get_freeze_count() > 0
        with gctune.tuned():  # an overlapping run shares the tuning
            assert gc.get_threshold()[0] == gctune.YOUNG_THRESHOLD
        assert gc.get_threshold()[0] == gctune.YOUNG_THRESHOLD
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_restored_when_the_run_fails() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), gctune.tuned():
        raise RuntimeError("boom")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
