"""The instruction data engine (no ROS): LEO-style samples from scene graphs."""
