"""The TF fallback tree, scene transforms, the simulator's frames and the standard commands."""

import math

from leo_ros.ros.tf import (planar_pose, transform_scene_tokens, TransformTree,
                            TransformUnavailable)
from leo_ros.sim.geometry import pose_matrix
import numpy as np
import pytest


def _planar(x, y, yaw):
    return pose_matrix(x, y, 0.0, yaw)


def test_tree_composes_along_the_chain_and_inverts():
    tree = TransformTree()
    tree.add('map', 'odom', _planar(1.0, 2.0, math.pi / 2), static=True)
    tree.add('odom', 'base_link', _planar(1.0, 0.0, 0.0), stamp=10.0)
    tree.add('base_link', 'camera', _planar(0.5, 0.0, 0.0), static=True)
    assert planar_pose(tree.lookup('map', 'base_link')) == pytest.approx((1.0, 3.0, math.pi / 2))
    point = tree.lookup('map', 'camera') @ [0.0, 0.0, 0.0, 1.0]
    assert point[:2] == pytest.approx([1.0, 3.5])
    assert tree.lookup('camera', 'map') @ tree.lookup('map', 'camera') == pytest.approx(np.eye(4))
    assert tree.lookup('odom', 'odom') == pytest.approx(np.eye(4))


def test_tree_picks_the_transform_nearest_the_stamp_and_refuses_far_ones():
    tree = TransformTree(tolerance=0.2)
    for t in range(5):
        tree.add('odom', 'base_link', _planar(float(t), 0.0, 0.0), stamp=100.0 + t)
    assert planar_pose(tree.lookup('odom', 'base_link', stamp=102.1))[0] == 2.0
    assert planar_pose(tree.lookup('odom', 'base_link'))[0] == 4.0       # the newest
    with pytest.raises(TransformUnavailable, match='near'):
        tree.lookup('odom', 'base_link', stamp=110.0)


def test_tree_says_which_frame_is_missing_unconnected_or_stale():
    tree = TransformTree(max_age=1.0)
    tree.add('map', 'odom', np.eye(4), received=0.0)
    tree.add('world', 'base_link', np.eye(4), received=0.0, static=True)
    with pytest.raises(TransformUnavailable, match="frame 'camera' does not exist"):
        tree.lookup('map', 'camera', now=0.5)
    with pytest.raises(TransformUnavailable, match='unconnected'):
        tree.lookup('map', 'base_link', now=0.5)
    with pytest.raises(TransformUnavailable, match='old'):
        tree.lookup('odom', 'map', now=5.0)
    with pytest.raises(ValueError, match='two different frames'):
        tree.add('map', 'map', np.eye(4))


def test_scene_tokens_turn_with_the_transform():
    from leo_ros.scene_tokens import SceneTokens
    rng = np.random.default_rng(0)
    box = rng.uniform(-1, 1, size=(500, 3)) * [0.3, 0.1, 0.05] + [2.0, 0.0, 0.5]
    tokens = SceneTokens.from_object_clouds([box], points_per_object=128, frame_id='camera')
    turned = transform_scene_tokens(tokens, _planar(1.0, 0.0, math.pi / 2), 'map')
    assert turned.frame_id == 'map'
    expected = [1.0 - tokens.centers[0, 1], tokens.centers[0, 0], tokens.centers[0, 2]]
    assert turned.centers[0] == pytest.approx(expected, abs=1e-5)
    assert turned.sizes[0] == pytest.approx(tokens.sizes[0][[1, 0, 2]], abs=1e-5)
    assert turned.points[0, :, 0] == pytest.approx(-tokens.points[0, :, 1], abs=1e-6)
    assert turned.points[0, :, 3:] == pytest.approx(tokens.points[0, :, 3:])   # colours stay


def test_sim_frames_chain_to_the_rendered_camera_pose():
    from leo_ros.sim.world import camera_mount
    from leo_ros.sim.world import World
    world = World(0)
    x, y, _ = world.robot_pose
    world.robot = (x, y, 0.7)
    link, optical = camera_mount(world.config.robot)
    odom = _planar(1.5, -0.5, 0.3)
    base_in_odom = np.linalg.inv(odom) @ _planar(*world.robot_pose)
    assert odom @ base_in_odom @ link @ optical == pytest.approx(world.camera_pose())
    assert optical[:3, 2] == pytest.approx([1.0, 0.0, 0.0])   # optical z looks along link x


def test_standard_manipulator_messages():
    from leo_ros.actions.types import EEDelta, PickPlace
    from leo_ros.ros.commands import ee_twist_stamped, grasp_poses
    twist = ee_twist_stamped(EEDelta(0.05, -0.02, 0.01, 0.2, 0.0), 'base_link', 0.5)
    assert twist.header.frame_id == 'base_link'
    assert (twist.twist.linear.x, twist.twist.linear.y, twist.twist.linear.z,
            twist.twist.angular.z) == pytest.approx((0.1, -0.04, 0.02, 0.4))
    with pytest.raises(ValueError):
        ee_twist_stamped(EEDelta(0.05, 0, 0, 0, 0), 'base_link', 0.0)
    pre, grasp, place = grasp_poses(PickPlace(1, 2, 0.5, 0, 3, 4, 0.7, 1.0), 'map', 0.15)
    assert [p.header.frame_id for p in (pre, grasp, place)] == ['map'] * 3
    assert pre.pose.position.z == pytest.approx(0.65) and grasp.pose.position.z == 0.5
    assert (place.pose.position.x, place.pose.position.y) == (3.0, 4.0)
