"""SAM as the promptable mask segmenter, through the ``segment-anything`` package.

Contract:
- :class:`SamSegmenter` implements :class:`~ws3d_ros.parts.interfaces.MaskSegmenter` with
  Meta's ``segment_anything`` (``pip install segment-anything``) and a *local* checkpoint
  file (``sam_vit_b_01ec64.pth``, ``sam_vit_l_0b3195.pth`` or ``sam_vit_h_4b8939.pth``,
  from the segment-anything README); nothing is downloaded. A missing checkpoint file or
  package raises :class:`~ws3d_ros.parts.interfaces.ModelUnavailableError` naming it
  (checked in that order, before anything heavy is imported or loaded).
- ``everything()`` is ``SamAutomaticMaskGenerator`` (``points_per_side`` grid,
  ``min_mask_pixels``); ``prompt(points)`` is ``SamPredictor.predict`` with the points as
  positive clicks and ``multimask_output=True``, keeping the mask of the highest predicted
  IoU. The image embedding of each view is computed once and kept (``set_view`` of a
  view seen before restores it), so self-extension's many prompts cost one encoder pass
  per view; :meth:`~SamSegmenter.forget_views` drops them when the view indices start
  to mean new images (the next sweep).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ws3d_ros.parts.interfaces import ModelUnavailableError

SAM_MODEL_TYPES = ("vit_b", "vit_l", "vit_h")
SAM_HINT = (
    "get a checkpoint (sam_vit_b_01ec64.pth / sam_vit_l_0b3195.pth / sam_vit_h_4b8939.pth) "
    "from https://github.com/facebookresearch/segment-anything#model-checkpoints on a "
    "machine with internet access and pass its path"
)


def _import_segment_anything() -> Any:
    try:
        import segment_anything
    except ImportError:
        raise ModelUnavailableError(
            "SAM needs the `segment-anything` package, which is not installed: "
            "pip install segment-anything"
        ) from None
    return segment_anything


class SamSegmenter:
    """SAM behind the promptable segmenter interface (see the module docstring)."""

    def __init__(
        self,
        checkpoint: str | Path | None,
        *,
        model_type: str = "vit_b",
        device: str = "cpu",
        points_per_side: int = 16,
        min_mask_pixels: int = 20,
    ) -> None:
        if model_type not in SAM_MODEL_TYPES:
            raise ModelUnavailableError(
                f"SAM model type must be one of {SAM_MODEL_TYPES}, found {model_type!r}"
            )
        if checkpoint is None or not Path(checkpoint).is_file():
            raise ModelUnavailableError(f"SAM checkpoint not found: {checkpoint}; {SAM_HINT}")
        sa = _import_segment_anything()
        sam = sa.sam_model_registry[model_type](checkpoint=str(checkpoint))
        sam.to(device)
        self.predictor = sa.SamPredictor(sam)
        self.generator = sa.SamAutomaticMaskGenerator(
            sam, points_per_side=points_per_side, min_mask_region_area=min_mask_pixels
        )
        self.min_mask_pixels = int(min_mask_pixels)
        self._image: np.ndarray | None = None
        self._view = -1
        self._embeddings: dict[int, tuple[Any, Any, Any]] = {}

    def set_view(self, view_index: int, image: np.ndarray) -> None:
        if view_index == self._view:
            return
        p = self.predictor
        if view_index in self._embeddings:
            p.features, p.original_size, p.input_size = self._embeddings[view_index]
            p.is_image_set = True
        else:
            p.set_image(np.ascontiguousarray(image), image_format="RGB")
            self._embeddings[view_index] = (p.features, p.original_size, p.input_size)
        self._image = image
        self._view = int(view_index)

    def forget_views(self) -> None:
        """Drop every kept embedding: the next ``set_view`` encodes its image afresh."""
        self._embeddings.clear()
        self._image = None
        self._view = -1

    def everything(self) -> list[np.ndarray]:
        if self._image is None:
            raise RuntimeError("set_view() first")
        records = self.generator.generate(np.ascontiguousarray(self._image))
        return [
            np.asarray(r["segmentation"], bool)
            for r in records
            if int(r["area"]) >= self.min_mask_pixels
        ]

    def prompt(self, points_rc: np.ndarray) -> np.ndarray | None:
        if self._image is None:
            raise RuntimeError("set_view() first")
        pts = np.asarray(points_rc, np.float32).reshape(-1, 2)
        if len(pts) == 0:
            return None
        masks, scores, _ = self.predictor.predict(
            point_coords=pts[:, ::-1] + 0.5,  # (x, y) of the pixel centres
            point_labels=np.ones(len(pts), np.int64),
            multimask_output=True,
        )
        best = np.asarray(masks[int(np.argmax(scores))], bool)
        return best if best.any() else None
