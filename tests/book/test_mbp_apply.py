"""apply_level against a plain-list model of MDP 3.0's positional book (notes/mdp3.md §4),
for every action, level and instrument depth, on books 10 rows deep (the inline-move path)
and 12 rows deep (the memmove path), with the neighbouring sides and instruments checked
untouched (the moves must not spill outside the side they work on)."""

import numpy as np
import pytest
from numba import njit

from tickwire.book.mbp import (EMPTY_PX, NFIELD, NSIDE, SMALL_ELEMS, SMALL_MAX_DEPTH, _move_elems_small, apply_level,
                               new_levels)

EMPTY = (EMPTY_PX, 0, 0)


@njit(cache=True)
def _apply(lv, s, side, level, depth, action, px, qty, nord):
    return apply_level(lv, s, side, level, depth, action, px, qty, nord)


def _model(rows, depth, level, action, row):
    """rows: the side's first ``depth`` rows (list of tuples). Returns (result, rows)."""
    rows = list(rows)
    if action == 3:
        return 0, [EMPTY] * depth
    if action == 4 and level > depth:       # the venue deleted more levels than we keep: all go
        return 0, [EMPTY] * depth
    if level < 1 or level > depth:
        return 1, rows
    i = level - 1
    if action == 0:
        rows.insert(i, row)
        return 0, rows[:depth]
    if action == 2:
        del rows[i]
        return 0, rows + [EMPTY]
    if action == 4:
        del rows[:level]
        return 0, rows + [EMPTY] * level
    if action in (1, 5):
        rows[i] = row
        return 0, rows
    return 2, rows


def _filled(n_inst, rows):
    lv = new_levels(n_inst, rows)
    k = np.arange(lv.size // NFIELD, dtype=np.int64).reshape(n_inst, NSIDE, rows)
    lv[..., 0], lv[..., 1], lv[..., 2] = 1000 + k, 1 + k, 2 + k
    return lv


@pytest.mark.parametrize("rows", [10, 12])
def test_every_action_level_and_depth(rows):
    assert (rows <= SMALL_MAX_DEPTH) == (rows == 10)   # both code paths are covered
    row = (777, 55, 3)
    for depth in (1, 2, 5, rows - 1, rows):
        for action in range(-1, 8):         # -1: a negative action is unknown, not a Change
            for level in range(0, depth + 2):
                lv = _filled(3, rows)
                before = lv.copy()
                s, side = 1, 2
                side_rows = [tuple(int(x) for x in r) for r in lv[s, side, :depth]]
                want_r, want = _model(side_rows, depth, level, action, row)
                got_r = _apply(lv, s, side, level, depth, action, *row)
                assert got_r == want_r, (depth, action, level)
                got = [tuple(int(x) for x in r) for r in lv[s, side, :depth]]
                if action == 3:
                    got = [tuple(int(x) for x in r) for r in lv[s, side, :rows]]
                    want = [EMPTY] * rows
                assert got == want, (depth, action, level)
                # rows past the instrument's depth (except DeleteThru, which clears the
                # whole side), other sides and other instruments are untouched
                mask = np.ones(lv.shape, bool)
                mask[s, side, :rows if action == 3 else depth] = False
                assert (lv[mask] == before[mask]).all(), (depth, action, level)


@njit(cache=True)
def _move(a, d, s, n):
    _move_elems_small(a, d, s, n)


def test_inline_move_every_size_and_overlap():
    """Every length the inline move serves, overlapping both ways and disjoint: the
    destination gets the source's old contents and nothing outside it changes."""
    a0 = np.arange(100, dtype=np.int64) * 7 + 1
    for n in range(SMALL_ELEMS + 1):
        for d, s in ((20, 17), (17, 20), (20, 23), (60, 10), (10, 60), (30, 30)):
            a = a0.copy()
            _move(a, d, s, n)
            want = a0.copy()
            want[d:d + n] = a0[s:s + n]
            assert (a == want).all(), (n, d, s)
