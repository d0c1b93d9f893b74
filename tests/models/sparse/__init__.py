"""Tests of the sparse LiDAR encoder (ws3d_ros.models.sparse)."""
