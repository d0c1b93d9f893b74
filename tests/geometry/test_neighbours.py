"""ws3d_ros.geometry.neighbours: the one 27-neighbour merge, against a dictionary lookup."""

from __future__ import annotations

import numpy as np
import pytest

from ws3d_ros.geometry.neighbours import CENTER, OFFSETS, fill_neighbour_table


@pytest.mark.parametrize("missing", [-1, 10_000])
def test_matches_a_dictionary_lookup(missing: int) -> None:
    rng = np.random.default_rng(0)
    coords = np.unique(rng.integers(0, 6, (150, 3)), axis=0)  # sorted, unique, dense-ish
    span = 9
    c = coords + 1
    keys = (c[:, 0] * span + c[:, 1]) * span + c[:, 2]
    half = OFFSETS[:CENTER]
    deltas = (half[:, 0] * span + half[:, 1]) * span + half[:, 2]
    table = np.full((len(keys), 27), missing, np.int64)
    fill_neighbour_table(keys, deltas, table)
    row = {tuple(p): i for i, p in enumerate(coords.tolist())}
    for i, p in enumerate(coords):
        for k, off in enumerate(OFFSETS):
            assert table[i, k] == row.get(tuple((p + off).tolist()), missing)
    assert np.all(OFFSETS[26 - np.arange(27)] == -OFFSETS)


def test_refuses_a_full_offset_list() -> None:
    with pytest.raises(ValueError, match=r"offsets 0\.\.12"):
        fill_neighbour_table(np.arange(3), np.arange(27), np.zeros((3, 27), np.int64))
