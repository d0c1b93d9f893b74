"""The 3x3x3 neighbour lookup over sorted unique integer cell keys (no torch, no rclpy).

Contract: :func:`fill_neighbour_table` fills ``table[i, k]`` with the row ``j`` whose key
is ``keys[i] + delta_k`` for the 27 offsets ``(dx, dy, dz)`` in ``-1..1`` with ``dx``
slowest (column 13 is the cell itself), and leaves the caller's "missing" value
elsewhere. ``keys`` must be sorted ascending and unique; ``half_deltas`` are the key
steps of offsets 0..12 (the other 13 mirror them: offset ``26 - k`` is ``-offset k``), so
each hit fills two cells and one linear merge per offset replaces binary searches.
Used by the supervoxel graph (missing = -1) and the sparse-conv rulebook (missing = M).
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["CENTER", "OFFSETS", "fill_neighbour_table"]

#: The 27 offsets, ``dx`` slowest; ``OFFSETS[26 - k] == -OFFSETS[k]``.
OFFSETS = np.array(
    [(dx, dy, dz) for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1)], dtype=np.int64
)
CENTER = 13


def fill_neighbour_table(keys: np.ndarray, half_deltas: np.ndarray, table: np.ndarray) -> None:
    """Fill ``table`` (``(M, 27)`` int64, pre-set to the missing value) in place."""
    if len(half_deltas) != CENTER:
        raise ValueError(
            f"expected the {CENTER} key steps of offsets 0..12, got {len(half_deltas)}"
        )
    _merge_fill(keys, half_deltas, table)


@nb.njit(cache=True)
def _merge_fill(
    keys: np.ndarray, deltas: np.ndarray, table: np.ndarray
) -> None:  # pragma: no cover
    # keys sorted and unique, so keys + d is sorted too: one linear merge per offset
    # (3-4x faster than 13 binary searches). "o sees i at +d" is "i sees o at -d" and
    # offset 26-k mirrors offset k, so each hit fills two cells.
    m = len(keys)
    for i in range(m):
        table[i, 13] = i
    for k in range(len(deltas)):
        d = deltas[k]
        j = 0
        for i in range(m):
            q = keys[i] + d
            while j < m and keys[j] < q:
                j += 1
            if j == m:
                break
            if keys[j] == q:
                table[i, k] = j
                table[j, 26 - k] = i
