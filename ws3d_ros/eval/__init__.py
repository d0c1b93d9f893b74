"""Evaluation: streaming semantic / panoptic metrics and their reports (no torch, no rclpy).

- :mod:`ws3d_ros.eval.metrics`: :class:`~ws3d_ros.eval.metrics.PanopticEvaluator`
  (confusion matrix, IoU / mIoU, PQ / SQ / RQ, PQ†; all points, in and out of the
  camera field of view) and :func:`~ws3d_ros.eval.metrics.majority_class_baseline`.
- :mod:`ws3d_ros.eval.report`: :func:`~ws3d_ros.eval.report.write_report`
  (``metrics.json``, ``metrics.md``, ``confusion.png``).
"""
