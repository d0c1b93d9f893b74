"""ROS 2 adapters (layer 5): thin rclpy nodes over the ROS-free core.

Modules here import rclpy at top level; nothing in the core imports them.
"""
