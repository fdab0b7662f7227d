"""The agent's ROS-free logic: instruction checks, the safety gate, the node set."""
