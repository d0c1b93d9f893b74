"""The output of the runtime for one sweep.

Contract: every array is aligned with the INPUT cloud's point order and length (organised
clouds flattened row-major), whatever points the model dropped: ``label`` uint16 class id
(65535 = unknown: out of range, non-finite, below the score threshold, or unseen in
zero-shot mode), ``instance`` uint32 (0 = none / stuff), ``score`` float32 in [0, 1]
(0 for dropped points), ``in_fov`` bool (a camera with an image saw the point).
``timings`` are milliseconds per stage; ``missing_cameras`` names cameras whose image did
not arrive (those used the LiDAR-only path).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ws3d_ros.labels import UNKNOWN_LABEL

UNKNOWN = UNKNOWN_LABEL


@dataclass
class PanopticResult:
    label: np.ndarray  # (N,) uint16
    instance: np.ndarray  # (N,) uint32
    score: np.ndarray  # (N,) float32
    in_fov: np.ndarray  # (N,) bool
    timings: dict[str, float] = field(default_factory=dict)
    missing_cameras: tuple[str, ...] = ()
    mode: str = "fusion"
    vocabulary_version: int = 0

    def __len__(self) -> int:
        return len(self.label)

    @classmethod
    def empty(cls, n: int, **kw: object) -> PanopticResult:
        return cls(
            label=np.full(n, UNKNOWN, np.uint16),
            instance=np.zeros(n, np.uint32),
            score=np.zeros(n, np.float32),
            in_fov=np.zeros(n, bool),
            **kw,  # type: ignore[arg-type]
        )

    @property
    def num_instances(self) -> int:
        return len(np.unique(self.instance[self.instance > 0]))
