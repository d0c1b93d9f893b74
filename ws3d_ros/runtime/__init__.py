"""Layer 4 runtime (no ROS): the :class:`~ws3d_ros.runtime.pipeline.Pipeline` that turns a
``Frame`` into a :class:`~ws3d_ros.runtime.result.PanopticResult` over one backend.

- :mod:`ws3d_ros.runtime.pipeline`: ``Pipeline`` (modes, vocabulary swap, stage timings).
- :mod:`ws3d_ros.runtime.backends`: torch / onnxruntime backends behind one interface;
  :mod:`ws3d_ros.runtime.tensorrt_backend`: the TensorRT one (imported only when asked for).
- :mod:`ws3d_ros.runtime.vocabulary`: class names -> stable ids, prompts, colours.
- :mod:`ws3d_ros.runtime.export`: checkpoint -> ONNX model directory with a parity report.
- :mod:`ws3d_ros.runtime.outputs`: results -> ROS-shaped messages (PointCloud2, label map).

Nothing is imported here: ``import ws3d_ros.runtime`` stays cheap (no torch) so the
message-level modules can be used on machines without the model stack.
"""
