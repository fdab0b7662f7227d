"""The built-in world (no ROS): procedural scenes, RGB-D rendering, a kinematic robot."""
