"""The cyclic collector is paused inside ``paused_gc`` (block or decorated call) and restored after, errors and
nesting included; a collector that was already off stays off."""

from __future__ import annotations

import gc

import pytest

from gnnsec.gc_pause import paused_gc


@paused_gc()
def _state_inside(fail: bool = False) -> bool:
    if fail:
        raise ValueError("boom")
    return gc.isenabled()


def test_paused_inside_and_restored_after() -> None:
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block does not re-enable it early
    assert gc.isenabled()
    assert _state_inside() is False
    assert gc.isenabled()
    with pytest.raises(ValueError, match="boom"):
        _state_inside(fail=True)
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
