"""Evaluation: metrics, scoring loop, FOV split, baseline, reports (no rclpy; torch only
through the model a :func:`~ws3d_ros.eval.bag.evaluate_bag` call loads).

- :mod:`ws3d_ros.eval.metrics`: :class:`~ws3d_ros.eval.metrics.PanopticEvaluator`
  (confusion matrix, IoU / mIoU, PQ / SQ / RQ, PQ†; all points, in and out of the
  camera field of view) and :func:`~ws3d_ros.eval.metrics.majority_class_baseline`.
- :mod:`ws3d_ros.eval.scoring`: class lookup by name, :func:`~ws3d_ros.eval.scoring.in_fov_mask`
  (the one field-of-view definition: every camera with an image), and
  :class:`~ws3d_ros.eval.scoring.FrameScorer` (sweeps -> evaluator + majority baseline).
- :mod:`ws3d_ros.eval.bag`: :func:`~ws3d_ros.eval.bag.evaluate_bag`, a model or a
  ``ws3d infer`` bag against a bag's ground truth (``ws3d eval``, ``ws3d demo`` and
  ``training.experiments`` all score through this package).
- :mod:`ws3d_ros.eval.report`: :func:`~ws3d_ros.eval.report.write_report`
  (``metrics.json``, ``metrics.md``, ``confusion.png``).
"""
