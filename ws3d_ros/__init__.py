"""ws3d_ros: open-vocabulary LiDAR-camera panoptic perception for ROS 2.

Layer 1 (``ws3d_ros.msg``, ``ws3d_ros.geometry``, ``ws3d_ros.sync``) imports
neither rclpy nor torch: it works on rclpy messages and on ``rosbags``
messages alike. See docs/DESIGN.md for the layers and the ROS contract.
"""

__version__ = "0.1.0"
