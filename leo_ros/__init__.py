"""leo_ros: an LEO-style embodied generalist agent on ROS 2."""
