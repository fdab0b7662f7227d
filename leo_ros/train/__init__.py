"""Training and closed-loop evaluation (no ROS); inference code lives in leo_ros.model."""
