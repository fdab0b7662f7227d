"""Training and closed-loop evaluation (no ROS)."""

from leo_ros.train.default_model import default_model_path, load_policy, MODEL_ENV

__all__ = ['default_model_path', 'load_policy', 'load_default_policy', 'MODEL_ENV']


def load_default_policy(path=None):
    """Load the trained policy (default: :func:`default_model_path`)."""
    return load_policy(path)
