"""Scene memory and the perception pipeline: ids, merging, tokens, classifier hook (no ROS)."""

from leo_ros.perception.memory import SceneMemory, SceneMemoryConfig, voxel_keys
from leo_ros.perception.pipeline import (label_cloud_colors, PerceptionConfig,
                                         PerceptionPipeline, stable_colors)
from leo_ros.perception.segmentation import SegmentationConfig
import numpy as np
import pytest
from test_perception_segmentation import BOXES, camera_pose, render


def cube(centre, size=0.1, count=500, seed=0):
    """Return (count, 3) points on the surface of an axis-aligned cube."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(-0.5, 0.5, (count, 3))
    axis = rng.integers(0, 3, count)
    points[np.arange(count), axis] = np.sign(points[np.arange(count), axis]) * 0.5
    return (points * size + np.asarray(centre)).astype(np.float32)


def test_memory_keeps_ids_for_overlapping_views():
    memory = SceneMemory(SceneMemoryConfig(voxel_size=0.02))
    first = memory.update([cube((0, 0, 0)), cube((1, 0, 0))], [None, None], stamp=0.0)
    assert first == [0, 1]
    # Next frame: shifted by 1 cm, the order swapped, and a new object.
    second = memory.update([cube((1.01, 0, 0), seed=1), cube((0.01, 0, 0), seed=2),
                            cube((0, 1, 0))], [None, None, None], stamp=1.0)
    assert second == [1, 0, 2]
    assert [o.observations for o in memory.objects] == [2, 2, 1]
    assert memory.objects[0].last_seen == 1.0


def test_memory_bounds_points_and_objects():
    config = SceneMemoryConfig(max_points_per_object=300, max_objects=2)
    memory = SceneMemory(config)
    memory.update([cube((0, 0, 0)), cube((1, 0, 0))], [None, None], stamp=0.0)
    memory.update([cube((0, 0, 0), seed=3)], [None], stamp=1.0)
    assert all(len(o.xyz) <= 300 for o in memory.objects)
    memory.update([cube((5, 5, 5))], [None], stamp=2.0)        # evicts object 1 (oldest seen)
    assert [o.object_id for o in memory.objects] == [0, 2]


def test_memory_forgets_after_timeout_and_never_reuses_ids():
    memory = SceneMemory(SceneMemoryConfig(forget_after=5.0))
    memory.update([cube((0, 0, 0))], [None], stamp=0.0)
    memory.update([cube((3, 0, 0))], [None], stamp=10.0)
    assert [o.object_id for o in memory.objects] == [1]
    memory.clear()
    assert memory.update([cube((0, 0, 0))], [None], stamp=11.0) == [2]


def test_voxel_keys_are_unique_and_sorted():
    keys = voxel_keys(np.array([[0.001, 0, 0], [0.002, 0, 0], [-0.5, 2, 3]]), 0.01)
    assert len(keys) == 2 and (np.diff(keys) > 0).all()


@pytest.mark.parametrize('name,value', [('voxel_size', 0.0), ('merge_overlap', 0.0),
                                        ('merge_overlap', 1.5), ('max_objects', 0),
                                        ('forget_after', -1.0)])
def test_memory_config_names_the_field(name, value):
    with pytest.raises(ValueError, match=f'SceneMemoryConfig.{name}'):
        SceneMemoryConfig(**{name: value})


def test_pipeline_tokens_in_fixed_frame_with_memory():
    config = PerceptionConfig(segmentation=SegmentationConfig(min_object_points=100),
                              points_per_object=256)
    calls = []

    def classify(tokens):
        calls.append(len(tokens))
        return [f'thing{int(i)}' for i in tokens.ids], np.full(len(tokens), 0.5)

    pipeline = PerceptionPipeline(config, classify=classify)
    xyz, _ = render()
    rgb = np.full(xyz.shape, 0.25, np.float32)
    pose = camera_pose((0.0, -0.75, 0.65), (0.0, 0.1, 0.05))
    result = pipeline.process(xyz, rgb, camera_to_fixed=pose, frame_id='map', stamp=1.0)
    tokens = result.tokens
    assert len(tokens) == 3 and tokens.points.shape == (3, 256, 6)
    assert tokens.frame_id == 'map' and tokens.stamp == 1.0
    # Boxes come out in the world frame where they were placed (visible faces only).
    for low, high in BOXES:
        centre = (np.asarray(low) + np.asarray(high)) / 2
        distance = np.linalg.norm(tokens.centers - centre, axis=1).min()
        assert distance < 0.05
    assert np.allclose(tokens.colors, 0.25)
    assert np.abs(tokens.points[..., :3]).max() <= 1.0 + 1e-5
    assert np.allclose(tokens.points[..., 3:], -0.5)
    assert tokens.labels == [f'thing{i}' for i in tokens.ids]
    # The same scene again: same ids, and the classifier is not asked again.
    again = pipeline.process(xyz, rgb, camera_to_fixed=pose, frame_id='map', stamp=2.0)
    assert sorted(again.tokens.ids) == sorted(tokens.ids)
    assert calls == [3]
    assert sorted(again.frame_ids) == sorted(tokens.ids)


def test_pipeline_without_memory_and_bad_input():
    pipeline = PerceptionPipeline(PerceptionConfig(
        segmentation=SegmentationConfig(min_object_points=100), use_memory=False,
        points_per_object=64, max_points=400_000))
    xyz, _ = render()
    result = pipeline.process(xyz, frame_id='camera')
    assert list(result.tokens.ids) == [0, 1, 2]
    assert np.allclose(result.tokens.points[..., 3:], 0.0)              # grey without colour
    empty = pipeline.process(np.full((10, 10, 3), np.nan, np.float32))
    assert len(empty.tokens) == 0 and empty.tokens.points.shape == (0, 64, 6)
    with pytest.raises(ValueError, match='max_points'):
        pipeline.process(np.zeros((700, 700, 3), np.float32))
    with pytest.raises(ValueError, match='rgb shape'):
        pipeline.process(xyz, rgb=np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match='xyz must be'):
        pipeline.process(np.zeros((4, 4), np.float32))


def test_colours_are_stable_per_id():
    assert np.array_equal(stable_colors([3, 23]), stable_colors([3, 3]))
    assert not np.array_equal(stable_colors([0])[0], stable_colors([1])[0])
    labels = np.array([[-2, -1, 0, 1]])
    colors = label_cloud_colors(labels, np.array([7, 9]))
    assert colors.shape == (1, 4, 3)
    assert np.array_equal(colors[0, 2], stable_colors([7])[0])
    assert np.array_equal(colors[0, 3], stable_colors([9])[0])
