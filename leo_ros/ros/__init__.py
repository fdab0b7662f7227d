"""ROS adapters: environment, pure message conversions, process helpers."""
