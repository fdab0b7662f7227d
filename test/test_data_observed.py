"""Observed tokens: what perception keeps when the robot looks around (no ROS)."""

from leo_ros.data.engine import DataEngine, EngineConfig
from leo_ros.data.observed import look_around, LookAroundConfig
from leo_ros.data.shards import (load_observed, observe_scene, observed_stamp, split_seeds,
                                 write_split)
from leo_ros.sim.world import World
from leo_ros.train.dataset import choose_view
import numpy as np
import pytest

SMALL = LookAroundConfig(views=6, width=160, height=120)


@pytest.fixture(scope='module')
def world():
    return World(split_seeds('test', 1)[0])


def test_look_around_keeps_partial_shaded_objects_with_world_ids(world):
    pose = tuple(world.robot_pose)
    tokens = look_around(world, config=SMALL, points_per_object=64)
    truth = world.scene_tokens(64)
    assert tuple(world.robot_pose) == pose                         # pose restored
    assert 1 <= len(tokens) <= len(truth)
    assert len(set(tokens.ids.tolist())) == len(tokens)           # one track per object
    rows = [list(truth.ids).index(i) for i in tokens.ids]         # world ids, all known
    assert tokens.labels == [truth.labels[r] for r in rows]       # categories for training
    # Centres within a few cm; colours darker than the albedo (Lambertian shading).
    assert np.median(np.abs(tokens.centers - truth.centers[rows])) < 0.03
    brightness = tokens.colors.sum(1) / np.maximum(truth.colors[rows].sum(1), 1e-3)
    assert np.median(brightness) < 0.95
    assert tokens.points.shape == (len(tokens), 64, 6)


def test_look_around_labels_with_a_classifier_when_given(world):
    tokens = look_around(world, config=SMALL, points_per_object=32,
                         classify=lambda t: (['thing'] * len(t), np.full(len(t), 0.5)))
    assert set(tokens.labels) == {'thing'}


def test_fewer_views_see_no_more_objects(world):
    one = look_around(world, config=LookAroundConfig(views=1, width=160, height=120),
                      points_per_object=16)
    turn = look_around(world, config=SMALL, points_per_object=16)
    assert set(one.ids.tolist()) <= set(turn.ids.tolist()) and len(one) < len(turn)


@pytest.mark.parametrize('field, value', [('views', 0), ('width', 8), ('min_object_points', 0)])
def test_look_around_config_names_bad_values(field, value):
    with pytest.raises(ValueError, match=field if field != 'width' else 'size'):
        LookAroundConfig(**{field: value})


def test_min_points_scale_with_the_image():
    assert LookAroundConfig(width=640, height=480).scaled_min_points == 300
    assert LookAroundConfig(width=320, height=240).scaled_min_points == 75


def test_observed_archive_round_trip_and_stamp(tmp_path):
    engine = DataEngine(EngineConfig(situations=2, object_captions=1, scene_captions=0, qa=1,
                                     nav=1, pick_place=0, plan=0, points_per_object=32,
                                     image_size=(0, 0)))
    write_split(tmp_path, 'train', 1, engine=engine, progress=False)
    seed = split_seeds('train', 1)[0]
    observe_scene(tmp_path, 'train', seed, 2, SMALL, 32)
    stamp = observed_stamp(2, SMALL, 32)
    sets = load_observed(tmp_path, 'train', seed, stamp)
    assert len(sets) == 2 and all(len(s) >= 1 for s in sets)
    assert sets[0].points.shape[1:] == (32, 6)
    assert load_observed(tmp_path, 'train', seed, observed_stamp(1, SMALL, 32)) == []
    assert load_observed(tmp_path, 'train', seed + 1) == []


def test_look_around_through_the_sensor_model(world):
    exact = look_around(world, config=SMALL, points_per_object=32)
    sensed = look_around(world, config=LookAroundConfig(views=6, width=160, height=120,
                                                        sensor=True), points_per_object=32)
    assert len(sensed) >= 1 and set(sensed.ids.tolist()) <= set(world.scene.objects)
    shared = sorted(set(exact.ids.tolist()) & set(sensed.ids.tolist()))
    assert shared
    # missing returns and noise: the same objects keep fewer points, centres move by mm-cm
    counts = {int(i): int(c) for i, c in zip(exact.ids, exact.point_counts)}
    assert sum(int(c) for i, c in zip(sensed.ids, sensed.point_counts) if int(i) in counts) < \
        sum(counts[i] for i in shared) * 1.0 + 1
    rows = [list(exact.ids).index(i) for i in shared]
    moved = [list(sensed.ids).index(i) for i in shared]
    assert np.median(np.abs(exact.centers[rows] - sensed.centers[moved])) < 0.05
    assert not np.array_equal(exact.centers[rows], sensed.centers[moved])


def test_the_sensor_is_part_of_the_observed_stamp():
    sensed = LookAroundConfig(views=6, width=160, height=120, sensor=True)
    assert observed_stamp(2, SMALL, 32) != observed_stamp(2, sensed, 32)
    assert 'sensor' not in observed_stamp(2, SMALL, 32)['look_around']   # old archives hold
    with pytest.raises(ValueError, match='sensor'):
        LookAroundConfig(sensor='yes')
    from leo_ros.train.pipeline import DataConfig, look_around_config
    assert look_around_config(DataConfig(observed_sensor=True)).sensor is True
    with pytest.raises(ValueError, match='observed_sensor'):
        DataConfig(observed_sensor='on')


def _view(ids):
    return {'index': {i: k for k, i in enumerate(ids)}, 'name': tuple(ids)}


@pytest.mark.parametrize('family, situation, targets, fraction, expected', [
    ('nav', 0, [3], 1.0, (3, 4)),            # its own situation, target seen
    ('nav', 1, [4], 1.0, 'mesh'),            # target not seen there
    ('nav', 0, [3], 0.0, 'mesh'),            # fraction 0
    ('scene_caption', 0, [], 1.0, 'mesh'),   # lists every object
    ('qa', 1, [], 1.0, (3, 5)),
])
def test_choose_view(family, situation, targets, fraction, expected):
    scene = {'name': 'mesh', 'observed': [_view([3, 4]), _view([3, 5])]}
    sample = {'situation_index': situation, 'target_ids': targets}
    chosen = choose_view(scene, sample, family, fraction, np.random.default_rng(0))
    assert chosen['name'] == expected


@pytest.mark.parametrize('mentioned, expected', [
    ([3, 4], (3, 4)),     # the size question's other object was seen too
    ([3, 5], 'mesh'),     # it was not: the view would not support the question
])
def test_choose_view_needs_every_mentioned_object(mentioned, expected):
    scene = {'name': 'mesh', 'observed': [_view([3, 4])]}
    sample = {'situation_index': 0, 'target_ids': [3], 'mentioned_ids': mentioned}
    assert choose_view(scene, sample, 'qa', 1.0, np.random.default_rng(0))['name'] == expected


def test_choose_view_for_manipulation_poses_draws_a_looked_around_situation():
    scene = {'name': 'mesh', 'observed': [_view([1]), _view([2])]}
    rng = np.random.default_rng(0)
    names = {choose_view(scene, {'situation_index': 5, 'target_ids': []}, 'pick_place', 1.0,
                         rng)['name'] for _ in range(20)}
    assert names == {(1,), (2,)}


def test_eval_config_names_a_bad_token_source():
    from leo_ros.train.evaluate import EvalConfig
    with pytest.raises(ValueError, match='tokens'):
        EvalConfig(tokens='lidar')
