"""An open-vocabulary box detector built on the project's open_clip towers (GLIP stand-in).

GLIP is not on PyPI; this scorer gives the pipeline open-vocabulary boxes from the CLIP
towers the project already loads (:func:`ws3d_ros.models.clip.load_clip`).

Contract:
- :class:`ClipBoxScorer` implements :class:`~ws3d_ros.parts.interfaces.BoxDetector`.
  Box proposals are the bounding boxes of a mask segmenter's automatic masks in the view
  (SAM in practice; any :class:`~ws3d_ros.parts.interfaces.MaskSegmenter`). Each proposal
  is cropped with ``context`` of margin, the pixels outside its mask dimmed towards the
  crop's mean (mask pooling), resized to the image tower's input and encoded; its unit
  embedding is compared by cosine similarity with the prompt-ensembled text embeddings of
  the class names (:class:`~ws3d_ros.models.clip.TextEncoder`), softmax at the tower's
  logit scale; the box keeps its best class when that probability is at least
  ``min_score``, with the probability as its score.
- Weights: a pretrained tag found in the local open_clip cache, a checkpoint file, or
  ``"random"`` (tests); missing weights raise the loader's
  :class:`~ws3d_ros.models.clip.WeightsNotFoundError` (a
  :class:`~ws3d_ros.errors.Ws3dError` naming the file and how to get it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ws3d_ros.models.clip import TextEncoder, load_clip
from ws3d_ros.models.clip.dense import preprocess
from ws3d_ros.parts.interfaces import Detection, MaskSegmenter, mask_box

PART_TEMPLATES = ("a photo of the {} of an object.", "the {}.", "a cropped photo of a {}.")


class ClipBoxScorer:
    """CLIP crop scoring of mask proposals (see the module docstring)."""

    def __init__(
        self,
        proposals: MaskSegmenter,
        *,
        model: str = "ViT-B-16",
        pretrained: str = "openai",
        device: str = "cpu",
        min_score: float = 0.3,
        context: float = 0.1,
        templates: Sequence[str] = PART_TEMPLATES,
        cache_dir: str | None = None,
    ) -> None:
        loaded = load_clip(model, pretrained, device=device, cache_dir=cache_dir)
        self.model = loaded.model.eval()
        self.norm = loaded.norm
        self.text = TextEncoder(loaded.model, loaded.tokenizer, device=device)
        self.proposals = proposals
        self.device = torch.device(device)
        self.min_score = float(min_score)
        self.context = float(context)
        self.templates = tuple(templates)
        size = getattr(self.model.visual, "image_size", 224)
        self.size = tuple(size) if isinstance(size, (tuple, list)) else (int(size), int(size))

    def _crop(self, image: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int]):
        x0, y0, x1, y1 = box
        mx, my = int(self.context * (x1 - x0)), int(self.context * (y1 - y0))
        h, w = mask.shape
        x0, y0, x1, y1 = max(x0 - mx, 0), max(y0 - my, 0), min(x1 + mx, w), min(y1 + my, h)
        crop = image[y0:y1, x0:x1].astype(np.float32)
        keep = mask[y0:y1, x0:x1, None]
        crop = np.where(keep, crop, 0.5 * crop + 0.5 * crop.mean(axis=(0, 1)))
        return preprocess(
            np.clip(crop, 0, 255).astype(np.uint8),
            self.size,
            mean=self.norm.mean,
            std=self.norm.std,
        )

    @torch.inference_mode()
    def detect(self, view_index: int, image: np.ndarray, class_names: list[str]) -> list[Detection]:
        if not class_names:
            return []
        self.proposals.set_view(view_index, image)
        masks = self.proposals.everything()
        boxes = [mask_box(m) for m in masks]
        pairs = [(m, b) for m, b in zip(masks, boxes, strict=True) if b is not None]
        if not pairs:
            return []
        batch = torch.stack([self._crop(image, m, b) for m, b in pairs]).to(self.device)
        emb = self.model.encode_image(batch)
        emb = emb / emb.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        text = self.text.encode(list(class_names), self.templates).to(emb)
        scale = float(getattr(self.model, "logit_scale", torch.tensor(np.log(100.0))).exp())
        probs = torch.softmax(scale * emb @ text.T, dim=-1).cpu().numpy()
        out = []
        for (_, (x0, y0, x1, y1)), p in zip(pairs, probs, strict=True):
            c = int(np.argmax(p))
            if p[c] >= self.min_score:
                out.append(Detection(float(x0), float(y0), float(x1), float(y1), c, float(p[c])))
        return out
