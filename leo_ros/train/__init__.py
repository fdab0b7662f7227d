"""Training and closed-loop evaluation (no ROS)."""

import os
from pathlib import Path
import sys

#: environment variable that points every entry point at another model directory
MODEL_ENV = 'LEO_MODEL'


def default_model_path() -> Path:
    """
    Return the model directory entry points load by default.

    ``$LEO_MODEL`` when set, else the shipped ``models/leo-default`` of the repository (found
    next to the package sources, which the build symlinks into the install), else
    ``<prefix>/share/leo_ros/models/leo-default``.
    """
    if os.environ.get(MODEL_ENV):
        return Path(os.environ[MODEL_ENV])
    repository = Path(__file__).resolve().parent.parent.parent / 'models' / 'leo-default'
    installed = Path(sys.prefix) / 'share' / 'leo_ros' / 'models' / 'leo-default'
    if not repository.is_dir() and installed.is_dir():
        return installed
    return repository


def load_default_policy(path=None):
    """Load the trained policy (default: :func:`default_model_path`)."""
    from leo_ros.train.policy import LeoTrainedPolicy
    return LeoTrainedPolicy.load(path or default_model_path())
