"""The depth-camera model: noise, quantisation, missing returns and jitter against exact depth."""

import dataclasses

from leo_ros.sim.render import CameraConfig, Renderer, STRUCTURE_ID
from leo_ros.sim.scene import make_object
from leo_ros.sim.sensor import apply_sensor, depth_edges, SensorConfig, shiny_instances, Surface
from leo_ros.sim.world import World, WorldConfig
import numpy as np
import pytest

# Optical frame (z forward, x right, y down) looking along map +x from height 0.5 m.
LOOK_ALONG_X = np.array([[0.0, 0.0, 1.0, 0.0],
                         [-1.0, 0.0, 0.0, 0.0],
                         [0.0, -1.0, 0.0, 0.5],
                         [0.0, 0.0, 0.0, 1.0]])

#: the model with every cause of missing returns off
NO_LOSS = {'edge_dropout': 0.0, 'dark_dropout': 0.0, 'shiny_fraction': 0.0, 'speckle': 0.0,
           'grazing_start_deg': 89.0, 'grazing_end_deg': 90.0, 'baseline': 0.0}


def sensor(**changes):
    """Return an enabled SensorConfig with ``changes``."""
    return SensorConfig(enabled=True, **changes)


def wall_surface(shape, albedo=0.7):
    """Return a Surface of a bright, matte wall facing the camera."""
    return Surface(albedo=np.full(shape, albedo, np.float32),
                   cos_incidence=np.ones(shape, np.float32), shiny=np.zeros(shape, bool),
                   shadow=np.zeros(shape, bool))


def scene_renderer(config, box_color='white', wall=4.0):
    """Return a renderer of a box 1 m wide at 2 m in front of a wall, over a floor."""
    box = make_object(5, 'box', box_color, 2.0 + 0.15, 0.0, 0.0, 0.0, (0.3, 1.0, 1.0))
    floor = np.array([[-1, -5, 0], [10, -5, 0], [10, 5, 0], [-1, 5, 0]], float)
    back = np.array([[wall, -5, 0], [wall, 5, 0], [wall, 5, 3], [wall, -5, 3]], float)
    grey = np.full((2, 3), 0.7, np.float32)
    renderer = Renderer(config, seed=1)
    renderer.set_meshes([(STRUCTURE_ID, floor, np.array([[0, 1, 2], [0, 2, 3]]), grey),
                         (STRUCTURE_ID, back, np.array([[0, 1, 2], [0, 2, 3]]), grey),
                         (box.id, *box.mesh())])
    return renderer


def test_off_by_default_and_exact():
    assert SensorConfig().enabled is False and CameraConfig().sensor.enabled is False
    config = CameraConfig(width=160, height=120)
    a = scene_renderer(config).render(LOOK_ALONG_X)
    b = scene_renderer(config).render(LOOK_ALONG_X)
    assert np.array_equal(a.depth, b.depth, equal_nan=True)
    assert np.isfinite(a.depth[60, 80]) and a.depth[60, 80] == pytest.approx(2.0, abs=1e-4)


@pytest.mark.parametrize('name,value', [
    ('noise_at_1m', -0.1), ('quantization_at_1m', float('nan')), ('edge_dropout', 1.5),
    ('shiny_fraction', -0.2), ('baseline', 2.0), ('edge_width', 1.5), ('enabled', 'yes'),
    ('grazing_end_deg', 60.0)])
def test_bad_config_names_the_field(name, value):
    with pytest.raises(ValueError, match=f'SensorConfig.{name}'):
        SensorConfig(**{name: value})


def test_noise_grows_with_depth_squared():
    rng = np.random.default_rng(0)
    shape = (200, 200)
    config = sensor(noise_at_1m=0.002, quantization_at_1m=0.0, frame_jitter_at_1m=0.0,
                    noise_correlation=0.0, **NO_LOSS)
    spreads = []
    for distance in (1.0, 2.0, 3.0):
        exact = np.full(shape, distance, np.float32)
        measured = apply_sensor(exact, wall_surface(shape), config, rng)
        spreads.append(float(np.std(measured - exact)))
    assert spreads[0] == pytest.approx(0.002, rel=0.1)
    assert spreads[1] / spreads[0] == pytest.approx(4.0, rel=0.15)
    assert spreads[2] / spreads[0] == pytest.approx(9.0, rel=0.15)


def test_quantisation_steps_grow_with_depth_squared():
    rng = np.random.default_rng(0)
    step = 0.0027
    config = sensor(noise_at_1m=0.0, quantization_at_1m=step, frame_jitter_at_1m=0.0, **NO_LOSS)
    for distance in (1.0, 2.5):
        exact = np.linspace(distance, distance + 0.2, 4000, dtype=np.float32)[None]
        measured = apply_sensor(exact, wall_surface(exact.shape), config, rng)[0]
        levels = np.unique(measured)
        # Inverse depth takes multiples of the step; depth steps are step * depth^2.
        assert np.allclose(np.round(1.0 / levels / step) * step, 1.0 / levels, atol=1e-6)
        gaps = np.diff(levels)                        # 1/a - 1/b = step: b - a = step a b
        assert np.allclose(gaps, step * levels[:-1] * levels[1:], rtol=1e-3)
        assert np.abs(measured - exact).max() <= 0.6 * step * (distance + 0.2) ** 2


def test_per_frame_jitter_moves_the_whole_frame():
    rng = np.random.default_rng(3)
    config = sensor(noise_at_1m=0.0, quantization_at_1m=0.0, frame_jitter_at_1m=0.002,
                    **NO_LOSS)
    exact = np.full((50, 50), 1.0, np.float32)
    offsets = []
    for _ in range(20):
        measured = apply_sensor(exact, wall_surface(exact.shape), config, rng)
        assert np.ptp(measured) < 1e-5                # one offset for the whole frame
        offsets.append(float(measured[0, 0] - 1.0))
    assert 0.001 < np.std(offsets) < 0.004


def test_depth_edges_mark_both_sides_of_a_step():
    depth = np.full((10, 10), 1.0, np.float32)
    depth[:, 5:] = 2.0
    depth[0, 0] = np.nan
    edges = depth_edges(depth, np.isfinite(depth), 0.03)
    assert edges[:, 4:6].all() and not edges[5:, :4].any() and not edges[5:, 6:].any()
    assert edges[1, 0] and edges[0, 1]                # beside a pixel with no hit


def test_missing_returns_only_near_depth_edges():
    rng = np.random.default_rng(0)
    depth = np.full((120, 160), 3.0, np.float32)
    depth[40:80, 50:110] = 1.5                        # a box in front of a wall
    config = sensor(**{**NO_LOSS, 'edge_dropout': 0.5, 'edge_width': 2})
    measured = apply_sensor(depth, wall_surface(depth.shape), config, rng)
    lost = np.isnan(measured)
    near = np.zeros(depth.shape, bool)
    near[36:84, 46:114] = True
    near[44:76, 54:106] = False
    assert lost.any() and not lost[~near].any()
    assert 0.3 < lost[near].mean() < 0.7


def test_projector_shadow_falls_beside_the_box_away_from_the_projector():
    config = CameraConfig(width=320, height=240,
                          sensor=sensor(**{**NO_LOSS, 'baseline': 0.075}))
    frame = scene_renderer(config).render(LOOK_ALONG_X)
    exact = scene_renderer(CameraConfig(width=320, height=240)).render(LOOK_ALONG_X)
    row = 100                                         # above the floor, box in front of wall
    box = np.flatnonzero(exact.instance_ids[row] == 5)
    left, right = box.min(), box.max()
    lost = np.isnan(frame.depth[row]) & np.isfinite(exact.depth[row])
    # Projector to the camera's right: the wall just left of the box is in shadow.
    assert lost[left - 4:left].all()
    assert not lost[right + 1:].any() and not lost[box].any()
    # Shadow width on the wall: baseline * (wall - box) / box depth, in pixels.
    focal = exact.intrinsics[0, 0]
    width = 0.075 * (4.0 - 2.0) / 2.0 * focal / 4.0
    assert lost[:left].sum() == pytest.approx(width, abs=3)


def test_dark_and_shiny_surfaces_lose_returns():
    rng = np.random.default_rng(0)
    shape = (200, 200)
    exact = np.full(shape, 1.5, np.float32)
    config = sensor(**{**NO_LOSS, 'dark_dropout': 0.5, 'dark_albedo': 0.1})
    dark = np.isnan(apply_sensor(exact, wall_surface(shape, albedo=0.02), config, rng))
    bright = np.isnan(apply_sensor(exact, wall_surface(shape, albedo=0.8), config, rng))
    assert not bright.any() and 0.25 < dark.mean() < 0.6
    shiny_config = sensor(**{**NO_LOSS, 'shiny_fraction': 1.0, 'shiny_dropout': 0.4})
    surface = dataclasses.replace(wall_surface(shape), shiny=np.ones(shape, bool))
    assert 0.25 < np.isnan(apply_sensor(exact, surface, shiny_config, rng)).mean() < 0.55
    # Holes come in blobs: a missing pixel's neighbours are mostly missing too.
    assert (dark[1:] & dark[:-1]).sum() / dark[1:].sum() > 0.7


def test_shiny_objects_are_fixed_per_id_and_never_the_floor():
    ids = np.repeat(np.arange(-1, 60), 10).reshape(61, 10)
    config = sensor(shiny_fraction=0.3, seed=4)
    shiny = shiny_instances(ids, config)
    assert np.array_equal(shiny, shiny_instances(ids, config))
    assert not shiny[ids <= 0].any()
    objects = [int(i) for i in np.unique(ids[shiny])]
    assert 8 <= len(objects) <= 30                     # about 30 % of 59 objects
    assert not np.array_equal(shiny, shiny_instances(ids, sensor(shiny_fraction=0.3, seed=5)))


def test_grazing_floor_loses_returns():
    rng = np.random.default_rng(0)
    shape = (100, 100)
    exact = np.full(shape, 2.0, np.float32)
    surface = wall_surface(shape)
    surface.cos_incidence[:, :50] = np.cos(np.radians(89.0))     # seen edge-on
    config = sensor(**{**NO_LOSS, 'grazing_start_deg': 75.0, 'grazing_end_deg': 88.0})
    lost = np.isnan(apply_sensor(exact, surface, config, rng))
    assert lost[:, :50].all() and not lost[:, 50:].any()


def test_renderer_frames_are_seeded_and_differ_per_frame():
    config = CameraConfig(width=160, height=120, sensor=sensor())
    first = scene_renderer(config).render(LOOK_ALONG_X)
    again = scene_renderer(config)
    a, b = again.render(LOOK_ALONG_X), again.render(LOOK_ALONG_X)
    assert np.array_equal(first.depth, a.depth, equal_nan=True)   # same seed, same frame
    assert not np.array_equal(a.depth, b.depth, equal_nan=True)   # next frame: new draws
    exact = scene_renderer(CameraConfig(width=160, height=120)).render(LOOK_ALONG_X)
    both = np.isfinite(a.depth) & np.isfinite(exact.depth)
    assert both.mean() > 0.7
    assert (np.abs(a.depth[both] - exact.depth[both]) / exact.depth[both] ** 2).max() < 0.01
    # Points follow the measured depth; instance ids and colours stay exact.
    assert np.array_equal(np.isnan(a.points[..., 2]), np.isnan(a.depth))
    assert np.array_equal(a.instance_ids, exact.instance_ids)


def test_world_renders_through_the_sensor_when_switched_on():
    camera = CameraConfig(width=160, height=120, sensor=sensor())
    noisy = World(3, WorldConfig(camera=camera)).observe()
    exact = World(3, WorldConfig(camera=CameraConfig(width=160, height=120))).observe()
    assert np.isnan(noisy.depth).any() and not np.isnan(exact.depth).any()
    both = np.isfinite(noisy.depth) & np.isfinite(exact.depth)
    error = (noisy.depth - exact.depth)[both] / exact.depth[both] ** 2
    assert 0.0005 < np.std(error) < 0.01
