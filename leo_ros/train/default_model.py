"""
Where the shipped default model lives, and one loader for every policy directory format.

Entry points (policy node, leo-eval, leo-agent, leo-demo) call :func:`default_model_path` when no
model is given and :func:`load_policy` to load either format:

- ``leo_ros.train.policy/1``: the ``LeoTrainedPolicy`` that ``leo-train`` writes (the default);
- anything else: ``leo_ros.model.policy.LeoPolicy`` directories.
"""

import json
import os
from pathlib import Path
import sys

#: environment variable that points every entry point at another model directory
MODEL_ENV = 'LEO_MODEL'
TRAINED_FORMAT = 'leo_ros.train.policy/1'


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


def model_format(path) -> str:
    """Return the ``format`` recorded in a model directory's config.json ('' if none)."""
    config = Path(path) / 'config.json'
    if not config.is_file():
        raise FileNotFoundError(f'no model at {path} (config.json missing)')
    return json.loads(config.read_text()).get('format', '')


def load_policy(path=None, device=None, dtype=None):
    """
    Load a policy directory of either format (default: :func:`default_model_path`).

    Both returned classes offer ``act(scene_tokens, image, instruction, agent_pose)`` returning
    a ``Decision`` with ``text``, ``action``, ``tokens``, ``kind`` and ``error``.
    """
    path = Path(path) if path else default_model_path()
    if model_format(path) == TRAINED_FORMAT:
        from leo_ros.train.policy import LeoTrainedPolicy
        return LeoTrainedPolicy.load(path)
    from leo_ros.model.policy import LeoPolicy
    return LeoPolicy.load(path, device=device, dtype=dtype)
