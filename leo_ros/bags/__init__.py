"""ROS 2 bags in rosbag2's MCAP layout: definitions, writer, reader, replay timing (no rclpy)."""
