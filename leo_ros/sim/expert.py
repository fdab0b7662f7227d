"""
Expert demonstrations in the world: navigation goals and steps, pick-and-place poses.

The data engine writes these as the target actions; closed-loop evaluation can use them as
an upper bound. All return None when the world offers no solution.
"""

import heapq
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


def nav_steps(world, object_id, goal: NavGoal, max_expansions=4000):
    """
    Return the shortest list of discrete steps (NavStep) from the robot's pose to the object.

    A* over the robot's own motion model (forward ``nav_forward``, turns of ``nav_turn``),
    every forward step collision-checked; the heuristic is the free-space path length to the
    goal (scipy Dijkstra on the grid) in forward steps, weighted for speed. The search ends at
    the first pose where :meth:`World.nav_success` holds; the steps end with 'stop'.
    """
    cfg = world.config.robot
    snapshot = world.snapshot()
    try:
        field, _ = world.grid.distances_from(goal.x, goal.y)
        x0, y0, yaw0 = (float(v) for v in world.robot)
        headings = max(1, int(round(2 * math.pi / cfg.nav_turn)))

        def heuristic(x, y):
            return field[world.grid.cell(x, y)] / cfg.nav_forward

        def done(x, y, k):
            world.robot[:] = (x, y, wrap_angle(yaw0 + k * cfg.nav_turn))
            return world.nav_success(object_id)

        if not np.isfinite(heuristic(x0, y0)):
            return None
        frontier = [(1.5 * heuristic(x0, y0), 0, 0, (x0, y0, 0))]
        parents = {0: (None, None)}
        seen, counter = set(), 0
        while frontier and counter < max_expansions:
            _, cost, node, (x, y, k) = heapq.heappop(frontier)
            key = (round(x / 0.05), round(y / 0.05), k % headings)
            if key in seen:
                continue
            seen.add(key)
            if done(x, y, k):
                steps = [NavStep('stop')]
                while parents[node][0] is not None:
                    node, step = parents[node]
                    steps.append(NavStep(step))
                return steps[::-1]
            yaw = yaw0 + k * cfg.nav_turn
            moves = [('turn_left', x, y, k + 1), ('turn_right', x, y, k - 1)]
            nx, ny = x + cfg.nav_forward * math.cos(yaw), y + cfg.nav_forward * math.sin(yaw)
            if np.isfinite(heuristic(nx, ny)) and world._segment_free((x, y), (nx, ny)):
                moves.append(('forward', nx, ny, k))
            for step, mx, my, mk in moves:
                counter += 1
                parents[counter] = (node, step)
                score = cost + 1 + 1.5 * heuristic(mx, my)
                heapq.heappush(frontier, (score, cost + 1, counter, (mx, my, mk)))
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
