"""A picture of One Thing One Click's pseudo labels round by round, for one sweep.

Contract: :func:`rounds_picture(xyz, panels, class_names, things)` returns an RGB uint8
image: a grid (two columns) of bird's-eye views of the same sweep, one per
``(title, labels)`` panel (labels are class ids into ``class_names``; 65535 =
unlabelled, drawn grey), and the class legend below (``*`` = thing class, plus a grey
"unlabelled" entry). :func:`run_self_training` writes ``RUN/rounds.png`` with it:
ground truth (when the bag has labels), the round-0 labels (the clicks, spread over
their supervoxels when ``labels.expand_to_segments``) and every round's pseudo labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ws3d_ros.runtime.vocabulary import color_for
from ws3d_ros.sim.classes import SimClass
from ws3d_ros.sim.preview import labels_bev, legend

PANEL_WIDTH = 760


def rounds_picture(
    xyz: np.ndarray,
    panels: Sequence[tuple[str, np.ndarray]],
    class_names: Sequence[str],
    things: Sequence[str] = (),
) -> np.ndarray:
    """Grid of labelled bird's-eye views + legend (see the module docstring)."""
    if not panels:
        raise ValueError("rounds_picture needs at least one panel")
    for title, labels in panels:
        if len(labels) != len(xyz):
            raise ValueError(f"panel {title!r} has {len(labels)} labels for {len(xyz)} points")
    classes = [SimClass(i, n, n in things, color_for(n)) for i, n in enumerate(class_names)]
    views = [labels_bev(xyz, lab, classes, title, width=PANEL_WIDTH) for title, lab in panels]
    if len(views) % 2:
        views.append(np.full_like(views[0], 255))
    rows = [np.concatenate(views[k : k + 2], axis=1) for k in range(0, len(views), 2)]
    grey = SimClass(len(classes), "unlabelled", False, (128, 128, 128))
    strip = legend([*classes, grey], 2 * PANEL_WIDTH)
    return np.concatenate([*rows, strip], axis=0)
