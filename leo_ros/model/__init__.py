"""The LEO policy (no ROS): object encoder, spatial transformer, image token, LLM + LoRA."""
