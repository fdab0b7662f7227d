"""
Frames and per-object features the policy reads (pure numpy, no ROS).

The policy sees the scene from where the robot stands (LEO aligns SQA3D scenes to the agent's
situation the same way): object centres are expressed in the robot's frame (x forward, y left),
so "left of" and "in front of" are read off directly, and coordinate actions of the ablations are
egocentric too. Grounded actions need no frame: they name objects.
"""

import math

from leo_ros.actions.types import NavGoal, PickPlace, wrap_angle
import numpy as np

#: object feature layout after the classifier embedding: colour (3), centre (3), size (3)
GEOMETRY_FEATURES = 9


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
    """Return a NavGoal or PickPlace expressed in the robot frame (others unchanged)."""
    yaw = float(pose[2])
    if isinstance(action, NavGoal):
        x, y = to_robot_frame(np.array([[action.x, action.y]]), pose)[0]
        return NavGoal(float(x), float(y), wrap_angle(action.yaw - yaw))
    if isinstance(action, PickPlace):
        pick = to_robot_frame(np.array([[action.pick_x, action.pick_y, action.pick_z]]), pose)[0]
        place = to_robot_frame(np.array([[action.place_x, action.place_y, action.place_z]]),
                               pose)[0]
        return PickPlace(*(float(v) for v in pick), wrap_angle(action.pick_yaw - yaw),
                         *(float(v) for v in place), wrap_angle(action.place_yaw - yaw))
    return action


def action_from_robot_frame(action, pose):
    """Inverse of :func:`action_to_robot_frame`."""
    yaw = float(pose[2])
    if isinstance(action, NavGoal):
        x, y = from_robot_frame(np.array([[action.x, action.y]]), pose)[0]
        return NavGoal(float(x), float(y), wrap_angle(action.yaw + yaw))
    if isinstance(action, PickPlace):
        pick = from_robot_frame(np.array([[action.pick_x, action.pick_y, action.pick_z]]),
                                pose)[0]
        place = from_robot_frame(np.array([[action.place_x, action.place_y, action.place_z]]),
                                 pose)[0]
        return PickPlace(*(float(v) for v in pick), wrap_angle(action.pick_yaw + yaw),
                         *(float(v) for v in place), wrap_angle(action.place_yaw + yaw))
    return action


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


def image_to_tensor_array(image) -> np.ndarray:
    """Return an ego-view image (H, W, 3) uint8 as (3, H, W) float32 in [-0.5, 0.5]."""
    return (np.asarray(image, np.float32) / 255.0 - 0.5).transpose(2, 0, 1).copy()
