"""Action tokenizers (no ROS): typed actions <-> action tokens."""
