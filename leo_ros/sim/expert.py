"""
Expert demonstrations in the world: navigation goals and steps, pick-and-place poses.

The data engine writes these as the target actions; closed-loop evaluation can use them as
an upper bound. All return None when the world offers no solution.
"""

import math

from leo_ros.actions.types import NavGoal, NavStep, PickPlace, wrap_angle
from leo_ros.sim.geometry import point_rectangle_distance, rotation_z
from leo_ros.sim.scene import FLOOR_ID
import numpy as np


def _reachable_cells(world, start):
    """Return free cell centres (N, 2) reachable from ``start`` and their path lengths (N,)."""
    dist, _ = world.grid.distances_from(*start)
    rows, cols = np.nonzero(np.isfinite(dist) & world.grid.free)
    centres = np.stack([(cols + 0.5), (rows + 0.5)], 1) * world.grid.resolution
    return centres, dist[rows, cols]


def nav_goal(world, object_id, start=None, slack=1.0):
    """
    Return the expert's NavGoal for reaching an object.

    It is the nearest (by path) free pose within ``slack * nav_distance`` of the object,
    facing its centre.

    :param start: (x, y) the path starts from (default: the robot)
    """
    obj = world.scene.object(object_id)
    start = world.robot[:2] if start is None else start
    centres, lengths = _reachable_cells(world, start)
    if len(centres) == 0:
        return None
    gaps = point_rectangle_distance(centres, (obj.x, obj.y), obj.half_extents, obj.yaw) \
        - world.config.robot.radius
    close = np.flatnonzero(gaps <= slack * world.config.success.nav_distance)
    close = close[np.argsort(lengths[close])]
    free = close[world.free_mask(centres[close])]
    if not len(free):
        return None
    x, y = centres[free[0]]
    return NavGoal(x=float(x), y=float(y), yaw=float(math.atan2(obj.y - y, obj.x - x)))


def nav_steps(world, object_id, goal: NavGoal, max_steps=300):
    """
    Return the discrete steps (NavStep) that take the robot from its pose to the object.

    They are executed on the world to check them and the robot is put back afterwards.
    """
    cfg = world.config.robot
    snapshot = world.snapshot()
    try:
        path = world.grid.path(world.robot[:2], (goal.x, goal.y))
        if path is None:
            return None
        steps, blocked = [], 0
        for _ in range(max_steps):
            if world.nav_success(object_id):
                steps.append(NavStep('stop'))
                return steps
            x, y, yaw = world.robot
            if math.dist((x, y), (goal.x, goal.y)) < cfg.nav_forward * 0.6:
                obj = world.scene.object(object_id)
                target = (obj.x, obj.y)
            else:
                nearest = int(np.argmin(((path - (x, y)) ** 2).sum(1)))
                ahead = nearest
                while ahead + 1 < len(path) and math.dist(path[ahead], (x, y)) < 0.35:
                    ahead += 1
                target = path[ahead]
            error = wrap_angle(math.atan2(target[1] - y, target[0] - x) - yaw)
            if abs(error) > cfg.nav_turn / 2 or blocked:
                step = NavStep('turn_left' if error > 0 else 'turn_right')
                blocked = 0
            else:
                step = NavStep('forward')
            if world.apply(step).ok:
                steps.append(step)
            else:
                blocked += 1
                if blocked > 1:
                    return None
        return None
    finally:
        world.restore(snapshot)


def place_spot(world, object_id, destination_id, rng, tries=40):
    """Return a free (x, y) on the destination's top for the object, or None."""
    obj = world.scene.object(object_id)
    radius = math.hypot(*obj.half_extents)
    if destination_id == FLOOR_ID:
        return None
    dest = world.scene.object(destination_id)
    hx, hy = dest.half_extents
    if dest.category == 'plate':
        candidates = [np.zeros(2)]
    else:
        if hx - radius - 0.03 <= 0 or hy - radius - 0.03 <= 0:
            return None
        candidates = rng.uniform([-hx + radius + 0.03, -hy + radius + 0.03],
                                 [hx - radius - 0.03, hy - radius - 0.03], size=(tries, 2))
    spots = candidates @ rotation_z(dest.yaw)[:2, :2].T + (dest.x, dest.y)  # (tries, 2)
    # Nearest to the object first: keeps the pick and the place within one arm's reach.
    for x, y in spots[np.argsort(np.hypot(*(spots - (obj.x, obj.y)).T))]:
        if world._place_blocked(obj, x, y, dest.top) is None:
            others_on = [o for o in world.scene.small_objects()
                         if o.id != obj.id and world.graph.on(o.id, dest.id)]
            if dest.category == 'plate' and others_on:
                return None
            return float(x), float(y)
    return None


def pick_place(world, object_id, destination_id, rng, start=None):
    """
    Return (base pose (x, y, yaw), PickPlace) for moving an object onto a destination.

    The base pose is a free, reachable pose within arm reach of both the object and the spot.
    """
    obj = world.scene.object(object_id)
    spot = place_spot(world, object_id, destination_id, rng)
    if spot is None:
        return None
    start = world.robot[:2] if start is None else start
    centres, lengths = _reachable_cells(world, start)
    reach = world.config.robot.arm_reach - 0.1
    ok = (np.hypot(*(centres - (obj.x, obj.y)).T) <= reach) & \
        (np.hypot(*(centres - spot).T) <= reach)
    candidates = np.flatnonzero(ok)
    candidates = candidates[np.argsort(lengths[candidates])]
    candidates = candidates[world.free_mask(centres[candidates])]
    if not len(candidates):
        return None
    x, y = centres[candidates[0]]
    mid = (np.array([obj.x, obj.y]) + spot) / 2
    base = (float(x), float(y), float(math.atan2(mid[1] - y, mid[0] - x)))
    dest = world.scene.object(destination_id)
    action = PickPlace(pick_x=obj.x, pick_y=obj.y, pick_z=obj.top, pick_yaw=obj.yaw,
                       place_x=spot[0], place_y=spot[1], place_z=dest.top + obj.size[2],
                       place_yaw=obj.yaw)
    return base, action
