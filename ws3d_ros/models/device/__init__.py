"""Torch twins of the frame geometry: voxelisation, rulebook, projection, lifting, grouping.

Contract: every function here takes and returns torch tensors on one device (CPU or CUDA)
and computes what its numpy reference in layer 1 / :mod:`ws3d_ros.models` computes; the
tests hold each to its reference (integer outputs identical; float outputs to the stated
rounding). They are what the :class:`~ws3d_ros.runtime.pipeline.Pipeline` runs between
the one host->device copy of a frame and the one device->host copy of its result.

| here | numpy reference |
| --- | --- |
| :func:`.voxel.voxelize_t` | :func:`ws3d_ros.geometry.voxel.voxelize` |
| :func:`.rulebook.sparse_index_t` | :func:`ws3d_ros.models.sparse.rulebook.build_sparse_index` |
| :func:`.projection.camera_hits_t` | :func:`ws3d_ros.models.lifting.camera_hits` |
| :func:`.lifting.lift_t` | :func:`ws3d_ros.models.lifting.lift` |
| :func:`.grouping.group_instances_t` | :func:`ws3d_ros.geometry.instances.group_instances` |
| :func:`.frame.prepare_geometry_t` | :func:`ws3d_ros.models.inputs.prepare_geometry` |
"""
