"""Per-world ids, the world's published map, and the scene memory across a world reset."""

import math

from leo_ros.agent.mapgrid import MapGrid
from leo_ros.perception.memory import SceneMemory
from leo_ros.sim.world import World
import numpy as np


def test_world_ids_count_resets_and_the_map_is_the_base_free_space():
    world = World(900001)
    assert world.world_id == 1
    world.reset(900002)
    assert world.world_id == 2
    resolution, origin, grid = world.occupancy()
    assert grid.dtype == np.int8 and set(np.unique(grid)) <= {0, 100}
    map_grid = MapGrid(resolution, origin, grid)
    min_x, max_x, min_y, max_y = map_grid.bounds()
    assert (min_x, min_y) == (0.0, 0.0)
    assert max_x >= world.scene.width and max_y >= world.scene.depth
    rng = np.random.default_rng(0)
    for x, y in rng.uniform([0, 0], [world.scene.width, world.scene.depth], (300, 2)):
        if map_grid.is_free(x, y):       # a free cell is a pose the base fits in (a margin)
            row, col = map_grid.cell(x, y)
            cx, cy = map_grid.center(row, col)
            assert world.base_is_free(cx, cy)
    x, y, _ = world.robot_pose
    assert map_grid.is_free(x, y)


def test_scene_memory_ids_are_never_reused_across_a_clear():
    memory = SceneMemory()
    cloud = np.random.default_rng(0).normal(size=(200, 3)) * 0.05
    first = memory.update([cloud, cloud + 1.0], [None, None], stamp=0.0)
    memory.clear()                        # the world was reset
    assert len(memory) == 0
    second = memory.update([cloud, cloud + 1.0], [None, None], stamp=1.0)
    assert not set(first) & set(second)


def test_e2e_scores_a_goal_by_its_gap_to_the_named_target():
    from types import SimpleNamespace
    from leo_ros.tools.bench_e2e import classify, score_goal
    world = World(900001)
    target = next(o for o in world.scene.objects.values() if o.category == 'table')
    reach = target.half_extents[0] + world.config.robot.radius + 0.1   # along its own x axis
    beside = (target.x + reach * math.cos(target.yaw), target.y + reach * math.sin(target.yaw))
    assert score_goal(world, target.id, beside, 0.35)[0] == 'success'
    other = max(world.scene.objects.values(),
                key=lambda o: np.hypot(o.x - target.x, o.y - target.y))
    category, detail = score_goal(world, target.id, (other.x, other.y), 0.35)
    assert category == 'wrong_target' and 'nearest is' in detail
    answer = SimpleNamespace(success=False, kind='nav_goal', response='', error=(
        "could not decode the action: bad grounded payload for 'nav_goal': []"))
    assert classify(answer, None, world, target.id, 0.35)[0] == 'decode_failure'
    refused = SimpleNamespace(success=False, kind='refusal', response="I don't see a cat.",
                              error="refused: I don't see a cat.")
    assert classify(refused, None, world, target.id, 0.35) == ('refused', "I don't see a cat.")
