"""
Frames and per-object features the policy reads (pure numpy, no ROS).

The policy sees the scene from where the robot stands (LEO aligns SQA3D scenes to the agent's
situation the same way): object centres are expressed in the robot's frame (x forward, y left),
so "left of" and "in front of" are read off directly, and coordinate actions of the ablations are
egocentric too. Grounded actions need no frame: they name objects.
"""

import math

from leo_ros.actions.registry import kind_of
import numpy as np


def to_robot_frame(points, pose) -> np.ndarray:
    """
    Express fixed-frame points in the robot frame.

    :param points: (N, 3) or (N, 2) [m]
    :param pose: (x, y, yaw) of the robot in the fixed frame
    :return: same shape, x forward, y left, z unchanged
    """
    points = np.asarray(points, np.float32)
    x, y, yaw = (float(v) for v in pose)
    c, s = math.cos(yaw), math.sin(yaw)
    out = points.copy()
    dx, dy = points[..., 0] - x, points[..., 1] - y
    out[..., 0] = c * dx + s * dy
    out[..., 1] = -s * dx + c * dy
    return out


def from_robot_frame(points, pose) -> np.ndarray:
    """Inverse of :func:`to_robot_frame`."""
    points = np.asarray(points, np.float64)
    x, y, yaw = (float(v) for v in pose)
    c, s = math.cos(yaw), math.sin(yaw)
    out = points.copy()
    out[..., 0] = x + c * points[..., 0] - s * points[..., 1]
    out[..., 1] = y + s * points[..., 0] + c * points[..., 1]
    return out


def action_to_robot_frame(action, pose):
    """Return an action with its poses in the robot frame (the registry knows which)."""
    return kind_of(action).to_robot_frame(action, pose)


def action_from_robot_frame(action, pose):
    """Inverse of :func:`action_to_robot_frame`."""
    return kind_of(action).from_robot_frame(action, pose)


def object_features(embeddings, tokens, pose) -> tuple:
    """
    Return the policy's per-object inputs.

    :param embeddings: (K, E) frozen classifier embeddings of the objects
    :param tokens: the scene's ``SceneTokens``
    :param pose: robot (x, y, yaw) in the fixed frame
    :return: features (K, E + 9) float32 [embedding, colour, centre, size] and robot-frame
        centres (K, 3) float32
    """
    centers = to_robot_frame(tokens.centers, pose)                      # (K, 3)
    features = np.concatenate([np.asarray(embeddings, np.float32),
                               np.asarray(tokens.colors, np.float32), centers,
                               np.asarray(tokens.sizes, np.float32)], axis=1)
    return features.astype(np.float32), centers.astype(np.float32)
