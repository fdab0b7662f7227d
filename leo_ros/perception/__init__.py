"""Scene segmentation into object tokens (no ROS): organized and unorganized clouds."""
