"""The robot, the arm, experts, success checks, tokens and the top-down PNG."""

import math

from leo_ros.actions.types import NavGoal, NavStep, PickPlace
from leo_ros.sim import expert
from leo_ros.sim.scene import FLOOR_ID, SMALL_CATEGORIES
from leo_ros.sim.topdown import draw_topdown
from leo_ros.sim.world import RobotConfig, Task, World
import numpy as np
import pytest


@pytest.fixture(scope='module')
def world():
    return World(3)


def _gap(world, object_id):
    """Robot-to-object footprint gap, computed here from corners (independent of the world)."""
    obj = world.scene.objects[object_id]
    x, y, _ = world.robot_pose
    c, s = math.cos(obj.yaw), math.sin(obj.yaw)
    dx, dy = x - obj.x, y - obj.y
    local = np.array([c * dx + s * dy, -s * dx + c * dy])
    outside = np.maximum(np.abs(local) - np.array(obj.size[:2]) / 2, 0)
    return float(np.hypot(*outside)) - world.config.robot.radius


def test_goal_following_avoids_furniture(world):
    home = world.snapshot()
    target = (0.9, 1.0, 1.0)
    assert world.set_goal(*target).ok
    for _ in range(600):
        world.step(0.1)
        assert world.base_is_free(*world.robot_pose[:2])
        if world.status != 'moving':
            break
    assert world.status == 'arrived'
    x, y, yaw = world.robot_pose
    assert math.dist((x, y), target[:2]) < 0.05 and abs(yaw - target[2]) < 0.05
    world.restore(home)


def test_goals_outside_the_map_or_in_furniture_are_refused(world):
    result = world.set_goal(-1.0, 2.0, 0.0)
    assert not result.ok and 'outside the map' in result.message
    table = next(o for o in world.scene.objects.values() if o.category == 'table')
    result = world.set_goal(table.x, table.y, 0.0)
    assert not result.ok and 'collision' in result.message


def test_cmd_vel_moves_and_stops_at_walls():
    world = World(3, robot_pose=(1.0, 1.0, -math.pi / 2))
    world.set_velocity(0.4, 0.0)
    world.step(0.25)
    assert world.robot_pose[1] == pytest.approx(0.9, abs=1e-6)
    for _ in range(40):  # keep pushing south into the wall
        world.set_velocity(0.4, 0.0)
        world.step(0.1)
    assert world.status == 'blocked'
    assert world.robot_pose[1] >= world.config.robot.radius - 1e-9
    world.step(1.0)  # the command times out
    assert world.velocity_now == (0.0, 0.0)


def test_pick_follows_gripper_and_place_rests_on_surface(world):
    home = world.snapshot()
    rng = np.random.default_rng(0)
    mug = next(o for o in world.scene.small_objects() if o.category == 'mug')
    table = next(o for o in world.scene.objects.values()
                 if o.category == 'table' and o.id != world.graph.support(
                     world.graph.support(mug.id)) and o.id != world.graph.support(mug.id))
    solution = expert.pick_place(world, mug.id, table.id, rng)
    assert solution is not None
    base, action = solution
    world.set_robot_pose(*base)
    assert world.pick(mug.id).ok and world.held_id == mug.id
    before = np.array([mug.x, mug.y])
    world.set_velocity(0.0, 1.0)
    world.step(0.5)
    moved = np.array([mug.x, mug.y])
    assert np.linalg.norm(moved - before) > 0.05  # it turned with the robot
    gx, gy, gz = world._gripper_in_map()
    assert (mug.x, mug.y, mug.top) == pytest.approx((gx, gy, gz))
    world.restore(home)
    world.set_robot_pose(*base)
    assert world.apply(action).ok
    assert mug.z == pytest.approx(table.top) and table.contains_xy((mug.x, mug.y))
    assert world.graph.on(mug.id, table.id)
    task = Task('pick_place', '', 3, target_ids=(mug.id, table.id))
    assert world.task_success(task)
    # Dropped over open floor it lands at z = 0.
    assert world.pick(mug.id).ok
    x, y, _ = world.robot_pose
    spot = next(p for p in ((x + 0.5, y), (x - 0.5, y), (x, y + 0.5), (x, y - 0.5))
                if world.surface_below(*p, 2.0)[1] == FLOOR_ID
                and world._place_blocked(mug, *p, 0.0) is None)
    assert world.place_at(*spot, 0.5).ok and mug.z == 0.0
    assert not world.task_success(task)
    world.restore(home)


def test_pick_refusals(world):
    table = next(o for o in world.scene.objects.values() if o.category == 'table')
    assert 'only' in world.pick(table.id).message
    assert 'no object 999' in world.pick(999).message
    assert not world.pick_at(-5.0, -5.0, 0.0).ok
    assert 'not holding' in world.place_at(1.0, 1.0, 1.0).message


@pytest.mark.parametrize('object_id', range(1, 12))
def test_expert_navigation_succeeds_and_success_check_agrees(world, object_id):
    home = world.snapshot()
    goal = expert.nav_goal(world, object_id)
    assert isinstance(goal, NavGoal)
    world.set_robot_pose(goal.x, goal.y, goal.yaw)
    assert world.nav_success(object_id)
    assert _gap(world, object_id) <= world.config.success.nav_distance + 1e-6
    world.restore(home)
    steps = expert.nav_steps(world, object_id, goal)
    assert world.snapshot()['robot'].tolist() == home['robot'].tolist()  # put back
    assert steps is not None
    for step in steps:
        assert world.apply(step).ok
    assert steps[-1] == NavStep('stop')
    assert world.nav_success(object_id)
    assert _gap(world, object_id) <= world.config.success.nav_distance + 1e-6
    world.restore(home)


def test_nav_success_needs_distance_and_facing(world):
    home = world.snapshot()
    obj = world.scene.objects[1]
    goal = expert.nav_goal(world, 1)
    world.set_robot_pose(goal.x, goal.y, goal.yaw)
    assert world.nav_success(1) and _gap(world, 1) <= 0.5
    world.set_robot_pose(goal.x, goal.y, goal.yaw + math.pi)
    assert not world.nav_success(1)
    far = max(((x, y) for x in np.arange(0.3, world.scene.width, 0.2)
               for y in np.arange(0.3, world.scene.depth, 0.2) if world.base_is_free(x, y)),
              key=lambda p: math.dist(p, (obj.x, obj.y)))
    world.set_robot_pose(*far, math.atan2(obj.y - far[1], obj.x - far[0]))
    assert not world.nav_success(1)
    world.restore(home)


def test_scene_tokens_from_ground_truth(world):
    tokens = world.scene_tokens(points_per_object=256)
    assert len(tokens) == len(world.scene.objects)
    assert tokens.points.shape == (len(tokens), 256, 6)
    assert np.abs(np.linalg.norm(tokens.points[..., :3], axis=-1)).max() <= 1.0 + 1e-5
    for k, object_id in enumerate(tokens.ids):
        obj = world.scene.objects[int(object_id)]
        low, high = obj.aabb()
        assert (tokens.centers[k] >= low - 1e-3).all() and (tokens.centers[k] <= high + 1e-3).all()
        assert tokens.labels[k] == obj.category
    again = world.scene_tokens(points_per_object=256)
    assert np.array_equal(tokens.points, again.points)  # reproducible
    small = world.scene_tokens(points_per_object=32, include_furniture=False)
    assert {world.scene.objects[int(i)].category for i in small.ids} <= set(SMALL_CATEGORIES)


def test_text_task_success_compares_answers(world):
    task = Task('qa', 'How many mugs are there?', 3, answer='2')
    assert world.task_success(task, 'The answer: 2.') is False
    assert world.task_success(task, '2.') and not world.task_success(task, '3')
    assert not world.task_success(task)


def test_robot_config_rejects_bad_values():
    with pytest.raises(ValueError, match='radius'):
        RobotConfig(radius=0.0)


def test_topdown_png(world, tmp_path):
    goal = expert.nav_goal(world, 2)
    path = draw_topdown(world.scene, tmp_path / 'top.png', world.robot_pose,
                        goals=[(goal.x, goal.y, goal.yaw)],
                        paths=[world.grid.path(world.robot[:2], (goal.x, goal.y))])
    data = open(path, 'rb').read()
    assert data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) > 10_000


def test_pick_place_action_roundtrip(world):
    home = world.snapshot()
    action = PickPlace(0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0)
    assert not world.apply(action).ok  # nothing to pick there
    world.restore(home)


def test_captions_succeed_when_they_state_the_facts_in_any_wording():
    from leo_ros.data.engine import TaskSampler
    world = World(2000003)
    sampler = TaskSampler()
    rng = np.random.default_rng(0)
    task = sampler.sample(world, 'object_caption', rng)
    obj = world.scene.object(task.target_ids[0])
    assert world.task_success(task, task.answer)
    wrong = 'purple' if obj.color != 'purple' else 'orange'
    assert not world.task_success(task, task.answer.replace(obj.color, wrong))
    scene = sampler.sample(world, 'scene_caption', rng)
    assert world.task_success(scene, scene.answer)
    first = sorted({o.category for o in world.scene.objects.values()})[0]
    assert not world.task_success(scene, ' '.join(
        w for w in scene.answer.split() if not w.startswith(first[:-1])))
