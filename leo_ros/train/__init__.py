"""Training and closed-loop evaluation (no ROS)."""
