"""Objects from per-point instance ids (simulator masks) instead of geometry."""

from leo_ros.perception.pipeline import PerceptionConfig, PerceptionPipeline
from leo_ros.perception.segmentation import (NO_OBJECT, segmentation_from_instances,
                                             SegmentationConfig, SUPPORT)
from leo_ros.sim.world import World
import numpy as np
import pytest


def test_instances_become_objects_largest_first():
    xyz = np.zeros((4, 5, 3), np.float32)
    xyz[0, 0] = np.nan
    instances = np.array([[7, 7, 0, 0, -1],
                          [7, 7, 3, 3, 3],
                          [9, 0, 3, 3, 3],
                          [0, 0, 3, 3, 3]])
    seg = segmentation_from_instances(instances, xyz, SegmentationConfig(min_object_points=2))
    assert seg.num_objects == 2                        # 9 has one point: too small
    assert (seg.labels[instances == 3] == 0).all()     # 9 points: the largest first
    assert (seg.labels[1, :2] == 1).all() and seg.labels[0, 1] == 1
    assert seg.labels[0, 0] == NO_OBJECT               # NaN point
    assert seg.labels[0, 4] == NO_OBJECT and seg.labels[2, 0] == NO_OBJECT
    assert (seg.labels[instances == 0] == SUPPORT).all()
    capped = segmentation_from_instances(instances, xyz, SegmentationConfig(
        min_object_points=1, max_objects=1))
    assert capped.num_objects == 1 and capped.dropped_objects == 2


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match='does not match'):
        segmentation_from_instances(np.zeros((2, 2)), np.zeros((3, 2, 3)))


def test_rendered_instances_give_one_token_per_visible_object():
    world = World(3)
    frame = world.observe()
    pipeline = PerceptionPipeline(PerceptionConfig())
    rgb = frame.rgb.astype(np.float32) / 255.0
    result = pipeline.process(frame.points, rgb, frame.camera_pose, 'map', 0.0,
                              frame.instance_ids)
    visible = {int(i) for i in np.unique(frame.instance_ids) if i > 0
               and (frame.instance_ids == i).sum() >= SegmentationConfig().min_object_points}
    assert len(result.tokens) == len(visible)
    truth = {obj.id: obj for obj in world.scene.objects.values()}
    for center in result.tokens.centers:    # every token sits on a real object
        nearest = min(np.linalg.norm(center[:2] - np.array([o.x, o.y])) for o in truth.values())
        assert nearest < 1.0
