"""Rendering against analytic geometry: depth of a known face, back-projection, instance ids."""

import math

from leo_ros.sim.render import CameraConfig, NO_HIT_ID, Renderer, STRUCTURE_ID
from leo_ros.sim.scene import make_object
from leo_ros.sim.world import World, WorldConfig
import numpy as np
import pytest

# Optical frame (z forward, x right, y down) looking along map +x from height 0.5 m.
LOOK_ALONG_X = np.array([[0.0, 0.0, 1.0, 0.0],
                         [-1.0, 0.0, 0.0, 0.0],
                         [0.0, -1.0, 0.0, 0.5],
                         [0.0, 0.0, 0.0, 1.0]])


def _box_renderer(distance, depth, config=None):
    box = make_object(7, 'box', 'red', distance + depth / 2, 0.0, 0.0, 0.0, (depth, 1.0, 1.0))
    floor_vertices = np.array([[-1, -5, 0], [10, -5, 0], [10, 5, 0], [-1, 5, 0]], float)
    floor = (STRUCTURE_ID, floor_vertices, np.array([[0, 1, 2], [0, 2, 3]]),
             np.full((2, 3), 0.7, np.float32))
    renderer = Renderer(config or CameraConfig(width=160, height=120))
    renderer.set_meshes([floor, (box.id, *box.mesh())])
    return renderer


@pytest.mark.parametrize('distance', [1.0, 2.5, 4.0])
def test_depth_of_a_box_face_is_the_analytic_distance(distance):
    renderer = _box_renderer(distance, 0.3)
    frame = renderer.render(LOOK_ALONG_X)
    h, w = frame.depth.shape
    centre = frame.depth[h // 2 - 2:h // 2 + 2, w // 2 - 2:w // 2 + 2]
    assert np.allclose(centre, distance, atol=1e-4)
    assert (frame.instance_ids[h // 2, w // 2]) == 7
    # Back-projected into the map, the centre pixels lie on the face plane x = distance.
    in_map = frame.points_in_map()
    assert np.allclose(in_map[h // 2, w // 2, 0], distance, atol=1e-4)
    # The red face is red.
    r, g, b = frame.rgb[h // 2, w // 2].astype(int)
    assert r > 2 * g and r > 2 * b


def test_floor_pixels_and_misses():
    renderer = _box_renderer(2.0, 0.3, CameraConfig(width=160, height=120, max_range=6.0))
    frame = renderer.render(LOOK_ALONG_X)
    bottom = frame.instance_ids[-1, :]
    assert (bottom == STRUCTURE_ID).all()
    # Floor depth of the bottom row: the ray hits z = 0 from 0.5 m up.
    k = frame.intrinsics
    row = frame.depth.shape[0] - 1
    slope = (row - k[1, 2]) / k[1, 1]      # y (down) per unit z
    assert frame.depth[row, 0] == pytest.approx(0.5 / slope, rel=1e-3)
    top = frame.instance_ids[0]
    assert (top == NO_HIT_ID).all() and np.isnan(frame.depth[0]).all()


def test_noise_and_dropout():
    clean = _box_renderer(2.0, 0.3).render(LOOK_ALONG_X)
    config = CameraConfig(width=160, height=120, depth_noise=0.01, dropout=0.2)
    noisy = _box_renderer(2.0, 0.3, config).render(LOOK_ALONG_X)
    both = np.isfinite(clean.depth) & np.isfinite(noisy.depth)
    error = noisy.depth[both] - clean.depth[both]
    assert 0.005 < np.std(error / clean.depth[both] ** 2) < 0.02
    lost = np.isfinite(clean.depth) & ~np.isfinite(noisy.depth)
    assert 0.15 < lost.sum() / np.isfinite(clean.depth).sum() < 0.25


def test_camera_config_rejects_bad_values():
    with pytest.raises(ValueError, match='fov_x'):
        CameraConfig(fov_x=0.0)
    with pytest.raises(ValueError, match='dropout'):
        CameraConfig(dropout=1.0)


def test_world_frame_shapes_and_camera_pose():
    world = World(2, WorldConfig())
    frame = world.observe()
    assert frame.rgb.shape == (480, 640, 3) and frame.rgb.dtype == np.uint8
    assert frame.depth.shape == (480, 640) and frame.points.shape == (480, 640, 3)
    assert frame.instance_ids.shape == (480, 640)
    x, y, yaw = world.robot_pose
    optical_z = frame.camera_pose[:3, 2]
    pitch = world.config.robot.camera_pitch
    assert optical_z == pytest.approx([math.cos(yaw) * math.cos(pitch),
                                       math.sin(yaw) * math.cos(pitch), -math.sin(pitch)],
                                      abs=1e-9)
    # Every pixel that saw an object maps into that object's bounding box (grown a little).
    in_map = frame.points_in_map()
    for object_id in set(np.unique(frame.instance_ids)) - {STRUCTURE_ID, NO_HIT_ID}:
        low, high = world.scene.objects[int(object_id)].aabb()
        points = in_map[frame.instance_ids == object_id]
        assert (points >= low - 0.02).all() and (points <= high + 0.02).all(), object_id


def test_repeated_views_reuse_the_cast_but_not_the_noise():
    renderer = _box_renderer(2.0, 0.3)
    first, again = renderer.render(LOOK_ALONG_X), renderer.render(LOOK_ALONG_X)
    assert np.array_equal(first.rgb, again.rgb)
    assert np.array_equal(first.depth, again.depth, equal_nan=True)
    with pytest.raises(ValueError):
        first.depth[0, 0] = 1.0  # shared with the cache: read-only
    moved = LOOK_ALONG_X.copy()
    moved[0, 3] = 0.5  # half a metre closer
    h, w = first.depth.shape
    assert renderer.render(moved).depth[h // 2, w // 2] == pytest.approx(1.5, abs=1e-4)
    noisy = _box_renderer(2.0, 0.3, CameraConfig(width=160, height=120, depth_noise=0.01))
    a, b = noisy.render(LOOK_ALONG_X), noisy.render(LOOK_ALONG_X)
    assert not np.array_equal(a.depth, b.depth, equal_nan=True)
