"""ROS 2 nodes, one per module."""
