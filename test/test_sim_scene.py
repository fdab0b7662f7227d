"""Scenes and scene graphs: reproducibility, bad configs, relations vs. independent geometry."""

import math

from leo_ros.sim.graph import GraphConfig, Reference, SceneGraph
from leo_ros.sim.scene import (CATEGORIES, FLOOR_ID, generate_scene, LayoutError, make_object,
                               Scene, SceneConfig, SMALL_CATEGORIES)
import numpy as np
import pytest


def _manual_scene(objects, width=6.0, depth=6.0):
    return Scene(seed=-1, width=width, depth=depth, objects={o.id: o for o in objects},
                 config=SceneConfig())


def test_same_seed_same_scene_and_different_seeds_differ():
    assert generate_scene(11).to_dict() == generate_scene(11).to_dict()
    assert generate_scene(11).to_dict() != generate_scene(12).to_dict()


def test_at_least_eight_categories_occur():
    seen = set()
    for seed in range(30):
        seen |= {o.category for o in generate_scene(seed).objects.values()}
    assert len(seen) >= 8 and seen <= set(CATEGORIES)


@pytest.mark.parametrize('seed', range(8))
def test_layout_is_physically_plausible(seed):
    scene = generate_scene(seed)
    for obj in scene.objects.values():
        low, high = obj.aabb()
        assert low[0] >= -1e-6 and low[1] >= -1e-6, obj
        assert high[0] <= scene.width + 1e-6 and high[1] <= scene.depth + 1e-6, obj
        if obj.support_id == FLOOR_ID:
            assert obj.z == 0.0
        else:
            support = scene.objects[obj.support_id]
            assert obj.z == pytest.approx(support.top)
            # Centre inside the support's footprint, computed here in the support's frame.
            dx, dy = obj.x - support.x, obj.y - support.y
            c, s = math.cos(support.yaw), math.sin(support.yaw)
            local = (c * dx + s * dy, -s * dx + c * dy)
            assert abs(local[0]) <= support.size[0] / 2 and abs(local[1]) <= support.size[1] / 2
    furniture = scene.furniture()
    for i, a in enumerate(furniture):
        for b in furniture[i + 1:]:
            # Footprints are disjoint: sample points of a, none inside b.
            u = np.linspace(-0.5, 0.5, 9)
            grid = np.stack(np.meshgrid(u, u), -1).reshape(-1, 2) * a.size[:2]
            c, s = math.cos(a.yaw), math.sin(a.yaw)
            points = grid @ np.array([[c, s], [-s, c]]) + (a.x, a.y)
            assert not any(b.contains_xy(p) for p in points), (a.id, b.id)


def test_unknown_category_and_colour_are_named():
    with pytest.raises(ValueError, match='teapot'):
        SceneConfig(small_categories=('mug', 'teapot'))
    with pytest.raises(ValueError, match='teapot'):
        make_object(1, 'teapot', 'red', 0, 0, 0, 0, (0.1, 0.1, 0.1))
    with pytest.raises(ValueError, match='magenta'):
        make_object(1, 'mug', 'magenta', 0, 0, 0, 0, (0.1, 0.1, 0.1))
    with pytest.raises(ValueError, match='tables'):
        SceneConfig(tables=(3, 1))


def test_impossible_layout_raises_layout_error():
    config = SceneConfig(room_width=(2.0, 2.0), room_depth=(2.0, 2.0), tables=(6, 6),
                         max_attempts=20, layout_retries=2)
    with pytest.raises(LayoutError, match='cannot place a table'):
        generate_scene(0, config)


def test_directions_follow_the_observer():
    a = make_object(1, 'box', 'red', 3.0, 4.0, 0.0, 0.0, (0.2, 0.2, 0.2))
    b = make_object(2, 'box', 'blue', 3.0, 2.0, 0.0, 0.0, (0.2, 0.2, 0.2))
    scene = _manual_scene([a, b])
    # Looking along +x, +y is to the left.
    graph = SceneGraph(scene, observer=(0.0, 3.0, 0.0))
    assert graph.direction(1, 2) == 'left of' and graph.direction(2, 1) == 'right of'
    # Looking along -x, it flips.
    graph = SceneGraph(scene, observer=(6.0, 3.0, math.pi))
    assert graph.direction(1, 2) == 'right of'
    # Looking along -y from above them: red (y=4) is nearer, so in front of blue.
    graph = SceneGraph(scene, observer=(3.0, 6.0, -math.pi / 2))
    assert graph.direction(1, 2) == 'in front of' and graph.direction(2, 1) == 'behind'


@pytest.mark.parametrize('seed', range(5))
def test_directions_match_cross_products(seed):
    scene = generate_scene(seed)
    observer = (scene.width / 2, scene.depth / 2, 0.7)
    graph = SceneGraph(scene, observer=observer)
    heading = np.array([math.cos(observer[2]), math.sin(observer[2])])
    for a in graph.ids:
        for b in graph.ids:
            relation = graph.direction(a, b)
            if relation is None:
                continue
            delta = scene.objects[a].center[:2] - scene.objects[b].center[:2]
            cross = heading[0] * delta[1] - heading[1] * delta[0]   # > 0: a is to the left
            along = heading @ delta                                 # > 0: a is farther
            expected = {'left of': cross > 0, 'right of': cross < 0,
                        'behind': along > 0, 'in front of': along < 0}[relation]
            assert expected, (a, b, relation, cross, along)


def test_support_near_counts_and_superlatives():
    table = make_object(1, 'table', 'brown', 2.0, 2.0, 0.0, 0.0, (1.2, 0.8, 0.75))
    plate = make_object(2, 'plate', 'white', 2.2, 2.0, 0.75, 0.0, (0.2, 0.2, 0.02), 1)
    mug = make_object(3, 'mug', 'red', 2.2, 2.0, 0.77, 0.0, (0.1, 0.08, 0.1), 2)
    big = make_object(4, 'box', 'blue', 1.7, 2.1, 0.75, 0.0, (0.2, 0.2, 0.2), 1)
    small = make_object(5, 'box', 'blue', 4.5, 4.5, 0.0, 0.0, (0.08, 0.08, 0.08))
    floating = make_object(6, 'sphere', 'green', 4.0, 1.0, 0.5, 0.0, (0.1, 0.1, 0.1))
    graph = SceneGraph(_manual_scene([table, plate, mug, big, small, floating]),
                       config=GraphConfig())
    assert graph.on(3, 2) and graph.on(2, 1) and not graph.on(3, 1)
    assert graph.support(3) == 2 and graph.support(4) == 1 and graph.support(5) == FLOOR_ID
    assert graph.support(6) == -1
    assert graph.near(4, 1) and not graph.near(5, 1)
    assert graph.count('box') == 2 and graph.count('box', 'blue') == 2 and graph.count('mug') == 1
    assert graph.extreme([4, 5], 'largest') == 4 and graph.extreme([4, 5], 'smallest') == 5
    assert graph.resolve(Reference('box', superlative='largest')) == [4]
    assert graph.resolve(Reference('box')) == [4, 5]                 # ambiguous
    assert graph.is_unique(Reference('mug', relation='on', anchor=Reference('plate')), 3)
    assert graph.is_unique(Reference('box', 'blue', relation='on', anchor=Reference('table')), 4)
    assert Reference('mug', 'red', relation='near', anchor=Reference('shelf')).text() == \
        'the red mug near the shelf'


def test_reference_rejects_bad_values():
    with pytest.raises(ValueError, match='teapot'):
        Reference('teapot')
    with pytest.raises(ValueError, match='relation'):
        Reference('mug', relation='under', anchor=Reference('table'))


def test_small_categories_all_build():
    for category in SMALL_CATEGORIES:
        obj = make_object(1, category, 'red', 1, 1, 0, 0.3, (0.1, 0.1, 0.1))
        vertices, triangles, colors = obj.mesh()
        assert len(triangles) == len(colors) and vertices[:, 2].min() >= -1e-9
        assert vertices[:, 2].max() == pytest.approx(0.1, abs=1e-6)
