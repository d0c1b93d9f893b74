"""Zero-shot 3D part and instance segmentation from multi-view 2D masks (ZeroPS).

Layer 3-4, no ROS, never the simulator. :class:`~ws3d_ros.parts.pipeline.ZeroPS` turns one
object's points and the camera views that saw them into a per-point part label and part
instance, over two 2D model interfaces (:mod:`ws3d_ros.parts.interfaces`).
"""

from ws3d_ros.parts.interfaces import BoxDetector, Detection, MaskSegmenter
from ws3d_ros.parts.pipeline import PartResult, ZeroPS, ZeroPSConfig

__all__ = ["BoxDetector", "Detection", "MaskSegmenter", "PartResult", "ZeroPS", "ZeroPSConfig"]
