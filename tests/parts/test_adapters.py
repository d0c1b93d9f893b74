"""The SAM adapter's errors without weights, and the CLIP box scorer on random towers."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from ws3d_ros.errors import Ws3dError
from ws3d_ros.models.clip import WeightsNotFoundError
from ws3d_ros.parts.clip_boxes import ClipBoxScorer
from ws3d_ros.parts.interfaces import BoxDetector, MaskSegmenter, ModelUnavailableError
from ws3d_ros.parts.rendered import RenderedSegmenter
from ws3d_ros.parts.sam import SamSegmenter


def test_sam_without_checkpoint_names_the_file(tmp_path) -> None:
    missing = tmp_path / "sam_vit_b_01ec64.pth"
    with pytest.raises(ModelUnavailableError, match=r"SAM checkpoint not found: .*sam_vit_b"):
        SamSegmenter(missing)
    with pytest.raises(ModelUnavailableError, match="checkpoint not found: None"):
        SamSegmenter(None)
    with pytest.raises(ModelUnavailableError, match="model type"):
        SamSegmenter(missing, model_type="vit_xl")


def test_sam_without_the_package_names_it(tmp_path, monkeypatch) -> None:
    ckpt = tmp_path / "sam_vit_b_01ec64.pth"
    ckpt.write_bytes(b"not read before the package is found")
    monkeypatch.setitem(sys.modules, "segment_anything", None)  # import fails
    with pytest.raises(ModelUnavailableError, match="pip install segment-anything"):
        SamSegmenter(ckpt)
    assert issubclass(ModelUnavailableError, Ws3dError)


def test_clip_scorer_without_weights_names_them(tmp_path) -> None:
    seg = RenderedSegmenter([np.zeros((8, 8), np.int32)])
    with pytest.raises(WeightsNotFoundError):
        ClipBoxScorer(seg, model="ws3d-tiny", pretrained=str(tmp_path / "missing.pt"))


def test_clip_scorer_scores_mask_proposals_on_random_towers() -> None:
    seg_map = np.zeros((48, 64), np.int32)
    seg_map[5:20, 5:30] = 1
    seg_map[25:45, 30:60] = 2
    image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    proposals = RenderedSegmenter([seg_map])
    scorer = ClipBoxScorer(proposals, model="ws3d-tiny", pretrained="random", min_score=0.0)
    assert isinstance(scorer, BoxDetector) and isinstance(proposals, MaskSegmenter)
    dets = scorer.detect(0, image, ["wheel", "door", "window"])
    boxes = sorted((d.x0, d.y0, d.x1, d.y1) for d in dets)
    assert boxes == [(5.0, 5.0, 30.0, 20.0), (30.0, 25.0, 60.0, 45.0)]
    for d in dets:
        assert 0 <= d.class_index < 3 and 1 / 3 - 1e-6 <= d.score <= 1.0
    # Probabilities are a softmax over the three names: a threshold above 1 keeps nothing.
    scorer.min_score = 1.01
    assert scorer.detect(0, image, ["wheel", "door", "window"]) == []
    assert scorer.detect(0, image, []) == []
