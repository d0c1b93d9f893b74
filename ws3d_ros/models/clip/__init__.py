"""CLIP branch: frozen open_clip towers giving dense image features and class-name embeddings.

- :func:`load_clip`: architecture + weights (pretrained tag from the offline
  cache, checkpoint file, or ``"random"``) -> ``(model, tokenizer, (mean, std))``.
- :class:`ClipDenseEncoder`: ``(B, 3, H, W)`` normalised image -> ``(B, D, H/s, W/s)``
  unit features in the image-text space (MaskCLIP value path).
- :class:`TextEncoder`: class names + prompt templates -> ``(C, D)`` unit
  embeddings, prompt-ensembled and cached per name.
- :func:`export_dense_onnx`: the dense encoder as ONNX with dynamic batch, H, W.

Nothing here imports rclpy.
"""

from ws3d_ros.models.clip.dense import (
    ClipDenseEncoder,
    interpolate_positional_embedding,
    preprocess,
)
from ws3d_ros.models.clip.errors import (
    CheckpointMismatchError,
    ClipInputError,
    UnsafeCheckpointError,
    UnsupportedModelError,
    WeightsNotFoundError,
)
from ws3d_ros.models.clip.export import export_dense_onnx
from ws3d_ros.models.clip.loader import (
    TINY_CONFIGS,
    ImageNorm,
    LoadedClip,
    load_clip,
    register_tiny_configs,
    resolve_pretrained_file,
)
from ws3d_ros.models.clip.text import TextEncoder

__all__ = [
    "TINY_CONFIGS",
    "CheckpointMismatchError",
    "ClipDenseEncoder",
    "ClipInputError",
    "ImageNorm",
    "LoadedClip",
    "TextEncoder",
    "UnsafeCheckpointError",
    "UnsupportedModelError",
    "WeightsNotFoundError",
    "export_dense_onnx",
    "interpolate_positional_embedding",
    "load_clip",
    "preprocess",
    "register_tiny_configs",
    "resolve_pretrained_file",
]
