"""Tests of `gc_paused` and `free_in_background`."""

from __future__ import annotations

import gc
import weakref

from codeintel.gcpause import free_in_background, gc_paused


class _Marker:
    """Something a weak reference can watch."""


class _State:
    """A stand-in for the solver's state: big lists of small lists, dicts and sets."""

    def __init__(self, marker: _Marker) -> None:
        self.pts = [[i, i + 1] for i in range(50_000)]
        self.fields = {(i, -i): [i] for i in range(20_000)}
        self.done = {(i, i) for i in range(20_000)}
        self.owner = [marker]


def test_gc_paused_restores_the_collector_as_it_was() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block found it off and leaves it off
    assert gc.isenabled()


def test_free_in_background_frees_everything_and_unfreezes_the_collector() -> None:
    marker = _Marker()
    alive = weakref.ref(marker)
    state = _State(marker)
    pts = state.pts
    del marker
    frozen_before = gc.get_freeze_count()
    thread = free_in_background(state)
    del state
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert pts == []  # emptied in slices
    assert alive() is None  # nothing else held the marker: freed with the state
    assert gc.get_freeze_count() == frozen_before == 0  # what was frozen for the duration is back
