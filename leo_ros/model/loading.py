"""
Where the shipped default model lives, and the one loader every entry point uses (no ROS).

Entry points (policy node, leo-eval, leo-agent, leo-demo, leo-ask) call
:func:`default_model_path` when no model is given and :func:`load_policy` to load it.
"""

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


def resolve_device(device=None, dtype=None, trained_dtype='float32') -> tuple:
    """
    Turn 'auto' (or None) into a concrete device and dtype.

    :param trained_dtype: the dtype the checkpoint's LM ran in when trained
    :return: (device, dtype): cuda when available, else cpu; bfloat16 on a GPU, else the
        trained dtype
    """
    import torch
    if device in (None, '', 'auto'):
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if dtype in (None, '', 'auto'):
        dtype = 'bfloat16' if str(device).startswith('cuda') else trained_dtype
    return device, dtype


def load_policy(path=None, device=None, dtype=None):
    """
    Load a policy directory (default: :func:`default_model_path`).

    :param device: 'auto'/None, 'cpu', 'cuda', 'cuda:N' (or 'meta' in tests)
    :param dtype: 'auto'/None, 'float32', 'bfloat16', 'float16'
    :raise ValueError: one line naming the file and what is wrong (a ``CheckpointError`` or
        ``BackboneError``)
    """
    from leo_ros.model.checkpoint import load_policy_dir, read_meta
    path = Path(path) if path else default_model_path()
    meta = read_meta(path)
    device, dtype = resolve_device(device, dtype, meta['policy']['llm'].get('dtype', 'float32'))
    return load_policy_dir(path, device=device, dtype=dtype)
