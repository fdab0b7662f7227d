"""Cluttered tabletop scenes: layouts that touch, stack and lean, and their per-point labels."""

import math

from leo_ros.sim.clutter import (ClutterConfig, FIRST_OBJECT, generate_clutter, ground_truth,
                                 IGNORE, KINDS, object_grid, render_clutter)
from leo_ros.sim.render import STRUCTURE_ID
from leo_ros.sim.sensor import SensorConfig
import numpy as np
import pytest

SMALL = ClutterConfig(width=320, height=240)


def surface_gap(a, b):
    """Return about how far apart the surfaces of two objects are (0 when touching) [m]."""
    points = b.points()
    for gap in (0.0, 0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.05):
        grown = [type(p)(p.kind, p.size + 2 * gap, p.pose) for p in a.parts]
        if any(p.inside(points).any() for p in grown):
            return gap
    return math.inf


@pytest.mark.parametrize('seed', range(8))
def test_scenes_hold_8_to_20_objects_that_do_not_overlap(seed):
    scene = generate_clutter(seed)
    assert scene.kind == KINDS[seed % len(KINDS)]
    assert 8 <= len(scene.objects) <= 20
    for k, obj in enumerate(scene.objects):
        points = obj.points()
        assert points[:, 2].min() > -1e-3, 'below the table top'
        for other in scene.objects[k + 1:]:
            assert not other.inside(points, margin=0.002).any(), (obj.id, other.id)
            assert not obj.inside(other.points(), margin=0.002).any(), (obj.id, other.id)


def test_same_seed_same_scene_other_seed_other_scene():
    a, b, c = generate_clutter(11), generate_clutter(11), generate_clutter(12)
    assert [o.shape for o in a.objects] == [o.shape for o in b.objects]
    assert np.array_equal(a.camera_pose, b.camera_pose)
    assert all(np.array_equal(p.pose, q.pose) for o, r in zip(a.objects, b.objects)
               for p, q in zip(o.parts, r.parts))
    assert not np.array_equal(a.camera_pose, c.camera_pose)


def test_touching_objects_touch():
    touching = [generate_clutter(seed) for seed in (0, 4, 8)]            # kind 'touching'
    placed = [(scene, o) for scene in touching for o in scene.objects if o.placement == 'touch']
    assert len(placed) > 20
    gaps = [min(surface_gap(o, other) for other in scene.objects if other is not o)
            for scene, o in placed]
    assert np.mean(np.asarray(gaps) <= 0.003) > 0.95


def test_stacked_scenes_stack_and_leaning_scenes_lean():
    stacked = [generate_clutter(seed) for seed in (1, 5, 9)]
    on_top = [o for scene in stacked for o in scene.objects if o.level >= 2]
    assert len(on_top) >= 6 and any(o.level == 3 for o in on_top)
    for scene in stacked:
        for obj in scene.objects:
            if obj.support_id:
                support = next(s for s in scene.objects if s.id == obj.support_id)
                bottom = obj.points()[:, 2].min()
                assert bottom == pytest.approx(support.top, abs=1e-3)    # ball samples
    leaning = [o for seed in (2, 6, 10) for o in generate_clutter(seed).objects
               if o.placement == 'lean']
    assert len(leaning) >= 3
    for board in leaning:
        axis = board.parts[0].pose[:3, 2]                                # the board's up axis
        tilt = math.degrees(math.acos(abs(axis[2])))
        assert 11.0 < tilt < 36.0


def test_rendered_labels_follow_the_mosd_layout():
    scene = generate_clutter(3, SMALL)
    frame = render_clutter(scene, SMALL)
    labels, xyz = frame.labels, frame.xyz
    assert labels.shape == xyz.shape[:2] == (240, 320) and frame.rgb.shape == (240, 320, 3)
    measured = np.isfinite(xyz).all(axis=-1)
    assert (labels[~measured] == 0).all() and (labels[measured] > 0).all()
    assert (labels == 1).mean() > 0.2                                   # the table
    objects, counts = np.unique(labels[labels >= FIRST_OBJECT], return_counts=True)
    assert len(objects) >= 5 and counts.min() >= SMALL.min_part_points
    assert frame.objects == len(scene.objects) and frame.kind == scene.kind


def test_ground_truth_splits_disjoint_parts_and_ignores_slivers():
    ids = np.full((40, 60), STRUCTURE_ID)
    ids[5:25, 5:20] = 3                    # object 3 seen left and right of object 4
    ids[5:25, 30:45] = 3
    ids[5:25, 20:30] = 4
    ids[30:33, 50:53] = 5                  # a sliver of object 5
    ids[38:, :] = -1                       # nothing
    measured = ids >= 0
    labels = ground_truth(ids, measured, min_part_points=50)
    left, right, middle = labels[10, 10], labels[10, 40], labels[10, 25]
    assert len({left, right, middle}) == 3 and min(left, right, middle) >= FIRST_OBJECT
    assert (labels[30:33, 50:53] == IGNORE).all()
    assert (labels[38:] == 0).all() and labels[0, 0] == 1


def test_object_grid_has_two_hundred_boxes():
    frame = render_clutter(object_grid(), ClutterConfig(fov_x=70.0, sensor=SensorConfig()))
    assert len(np.unique(frame.labels[frame.labels >= FIRST_OBJECT])) > 150


@pytest.mark.parametrize('changes,field', [
    ({'objects': (0, 5)}, 'objects'), ({'objects': (9, 8)}, 'objects'),
    ({'kinds': ('piles',)}, 'kinds'), ({'distance': (0.0, 1.0)}, 'distance'),
    ({'elevation_deg': (30.0, 95.0)}, 'elevation_deg'), ({'min_part_points': 0},
                                                         'min_part_points')])
def test_bad_config_names_the_field(changes, field):
    with pytest.raises(ValueError, match=f'ClutterConfig.{field}'):
        ClutterConfig(**changes)
