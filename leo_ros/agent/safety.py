"""
The safety gate between decoded actions and the robot (pure Python, no ROS).

Every command the policy produces passes :meth:`SafetyGate.check` before anything is
published: goals outside the map or the workspace are clamped or refused, speeds are bounded,
a stale scene refuses motion, and ``dry_run`` lets nothing through.

The map bounds come from the robot's map (:meth:`SafetyGate.set_map`, a
:class:`~leo_ros.agent.mapgrid.MapGrid` from ``nav_msgs/OccupancyGrid``) when there is one,
and from the ``map_*`` parameters otherwise. With a map, a goal in an occupied or unknown cell
is moved to the nearest free cell within ``max_goal_shift`` (``occupied_goal: move``), or
refused (``occupied_goal: refuse``, or no free cell that near).
"""

from dataclasses import dataclass, replace
import math

from leo_ros.actions.registry import kind_of
from leo_ros.actions.types import EEDelta, NavGoal, NavStep, PickPlace


@dataclass
class SafetyConfig:
    """Limits applied to every command."""

    map_min_x: float = -5.0             # map bounds [m]: navigation goals must lie inside
    map_max_x: float = 5.0
    map_min_y: float = -5.0
    map_max_y: float = 5.0
    workspace_min_z: float = 0.0        # manipulator reach [m], in the fixed frame
    workspace_max_z: float = 1.5
    max_reach: float = 1.2              # max horizontal distance base -> pick/place [m]
    max_linear_speed: float = 0.5       # [m/s]
    max_angular_speed: float = 1.0      # [rad/s]
    step_distance: float = 0.25         # one `forward` step [m]
    step_angle: float = math.radians(30.0)   # one `turn_*` step [rad]
    max_ee_step: float = 0.1            # largest end-effector displacement per command [m]
    max_scene_age: float = 5.0          # refuse to act on a scene older than this [s]
    out_of_bounds: str = 'clamp'        # 'clamp' goals into the map, or 'refuse' them
    dry_run: bool = False               # decode and report, publish no motion
    occupied_goal: str = 'move'         # goal in an occupied map cell: 'move' it or 'refuse'
    max_goal_shift: float = 1.0         # farthest a goal is moved to a free cell [m]

    def __post_init__(self):
        for low, high in (('map_min_x', 'map_max_x'), ('map_min_y', 'map_max_y'),
                          ('workspace_min_z', 'workspace_max_z')):
            if not getattr(self, low) < getattr(self, high):
                raise ValueError(f'SafetyConfig.{low} ({getattr(self, low)}) must be below '
                                 f'{high} ({getattr(self, high)})')
        for name in ('max_reach', 'max_linear_speed', 'max_angular_speed', 'step_distance',
                     'step_angle', 'max_ee_step', 'max_scene_age', 'max_goal_shift'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f'SafetyConfig.{name} must be a positive number, got {value!r}')
        if self.out_of_bounds not in ('clamp', 'refuse'):
            raise ValueError(f"SafetyConfig.out_of_bounds must be 'clamp' or 'refuse', got "
                             f'{self.out_of_bounds!r}')
        if self.occupied_goal not in ('move', 'refuse'):
            raise ValueError(f"SafetyConfig.occupied_goal must be 'move' or 'refuse', got "
                             f'{self.occupied_goal!r}')


@dataclass(frozen=True)
class GateResult:
    """What the gate let through: the (possibly clamped) action, or None and why not."""

    action: object
    allowed: bool
    reason: str = ''
    clamped: bool = False


@dataclass(frozen=True)
class Velocity:
    """A bounded base velocity for one navigation step: drive for ``duration`` seconds."""

    linear: float       # [m/s] along base x
    angular: float      # [rad/s] about z
    duration: float     # [s]


class SafetyGate:
    """Check decoded actions against :class:`SafetyConfig`."""

    def __init__(self, config: SafetyConfig, map_grid=None):
        self.config = config
        self.map = map_grid

    def set_map(self, map_grid):
        """Use a :class:`~leo_ros.agent.mapgrid.MapGrid` for bounds and occupancy (None: off)."""
        self.map = map_grid

    def _bounds(self, grid):
        """Return (min_x, max_x, min_y, max_y): the map's, or the parameters' without one."""
        if grid is not None:
            return grid.bounds()
        c = self.config
        return c.map_min_x, c.map_max_x, c.map_min_y, c.map_max_y

    def check(self, action, scene_age, robot_xy=None) -> GateResult:
        """
        Return whether ``action`` may be executed, and the action to execute.

        :param scene_age: seconds since the scene the decision was made on (None: no scene)
        :param robot_xy: the base position, for the manipulator's reach check
        """
        config = self.config
        if config.dry_run:
            return GateResult(action, False, 'dry_run: nothing is executed')
        if scene_age is None:
            return GateResult(None, False, 'no scene has arrived yet')
        if not math.isfinite(scene_age) or scene_age > config.max_scene_age:
            return GateResult(None, False, f'scene is stale: {scene_age:.1f} s old, limit '
                              f'{config.max_scene_age:.1f} s')
        values = [getattr(action, name) for name in getattr(action, '__dataclass_fields__', {})
                  if isinstance(getattr(action, name), (int, float))]
        if not all(math.isfinite(v) for v in values):
            return GateResult(None, False, f'{action.kind} has non-finite values: {action}')
        try:
            rule = kind_of(action).gate       # the registry names each kind's rule
        except ValueError:
            return GateResult(None, False, f'unknown action type {type(action).__name__}')
        return self.RULES[rule](self, action, robot_xy)

    #: gate rule of the action registry -> check(self, action, robot_xy)
    RULES = {'goal': lambda gate, action, _: gate._nav_goal(action),
             'step': lambda gate, action, _: GateResult(action, True),
             'pick_place': lambda gate, action, robot_xy: gate._pick_place(action, robot_xy),
             'ee_delta': lambda gate, action, _: gate._ee_delta(action)}

    def step_velocity(self, step: NavStep) -> Velocity:
        """Return the bounded velocity that carries out one navigation step."""
        config = self.config
        if step.step == 'forward':
            return Velocity(config.max_linear_speed, 0.0,
                            config.step_distance / config.max_linear_speed)
        if step.step in ('turn_left', 'turn_right'):
            sign = 1.0 if step.step == 'turn_left' else -1.0
            return Velocity(0.0, sign * config.max_angular_speed,
                            config.step_angle / config.max_angular_speed)
        return Velocity(0.0, 0.0, 0.0)

    def bound_velocity(self, linear, angular):
        """Clamp a requested base velocity to the speed limits."""
        limit_v, limit_w = self.config.max_linear_speed, self.config.max_angular_speed
        return (min(max(linear, -limit_v), limit_v), min(max(angular, -limit_w), limit_w))

    def _inside_map(self, x, y, grid):
        if grid is not None:
            return grid.contains(x, y)
        min_x, max_x, min_y, max_y = self._bounds(None)
        return min_x <= x <= max_x and min_y <= y <= max_y

    def _clamp_xy(self, x, y, grid):
        min_x, max_x, min_y, max_y = self._bounds(grid)
        if grid is not None:                # stay inside the last cell, not on its far edge
            margin = 0.5 * grid.resolution
            min_x, max_x, min_y, max_y = (min_x + margin, max_x - margin, min_y + margin,
                                          max_y - margin)
        return min(max(x, min_x), max_x), min(max(y, min_y), max_y)

    def _nav_goal(self, goal: NavGoal) -> GateResult:
        notes, grid = [], self.map          # one map for the whole check (set_map may race)
        if not self._inside_map(goal.x, goal.y, grid):
            where = f'goal ({goal.x:.2f}, {goal.y:.2f}) is outside the map'
            if self.config.out_of_bounds == 'refuse':
                return GateResult(None, False, where)
            x, y = self._clamp_xy(goal.x, goal.y, grid)
            goal = replace(goal, x=x, y=y)
            notes.append(f'{where}; clamped to ({x:.2f}, {y:.2f})')
        if grid is not None and not grid.is_free(goal.x, goal.y):
            where = f'goal ({goal.x:.2f}, {goal.y:.2f}) is in an occupied map cell'
            free = None if self.config.occupied_goal == 'refuse' else \
                grid.nearest_free(goal.x, goal.y, self.config.max_goal_shift)
            if free is None:
                why = '' if self.config.occupied_goal == 'refuse' else \
                    f' and no free cell is within {self.config.max_goal_shift:.2f} m'
                return GateResult(None, False, '; '.join(notes + [where + why]))
            goal = replace(goal, x=float(free[0]), y=float(free[1]))
            notes.append(f'{where}; moved to the nearest free cell ({free[0]:.2f}, '
                         f'{free[1]:.2f})')
        return GateResult(goal, True, '; '.join(notes), clamped=bool(notes))

    def _pick_place(self, action: PickPlace, robot_xy) -> GateResult:
        c, grid = self.config, self.map
        for name in ('pick', 'place'):
            x, y, z = (getattr(action, f'{name}_{axis}') for axis in 'xyz')
            if not self._inside_map(x, y, grid):
                return GateResult(None, False, f'{name} pose ({x:.2f}, {y:.2f}) is outside '
                                  f'the map')
            if not c.workspace_min_z <= z <= c.workspace_max_z:
                return GateResult(None, False, f'{name} height {z:.2f} m is outside the '
                                  f'workspace [{c.workspace_min_z}, {c.workspace_max_z}] m')
            if robot_xy is not None:
                reach = math.hypot(x - robot_xy[0], y - robot_xy[1])
                if reach > c.max_reach:
                    return GateResult(None, False, f'{name} pose is {reach:.2f} m from the '
                                      f'base, beyond the reach of {c.max_reach:.2f} m')
        return GateResult(action, True)

    def _ee_delta(self, action: EEDelta) -> GateResult:
        norm = math.sqrt(action.dx ** 2 + action.dy ** 2 + action.dz ** 2)
        gripper = min(max(action.gripper, 0.0), 1.0)
        if norm <= self.config.max_ee_step and gripper == action.gripper:
            return GateResult(action, True)
        scale = min(1.0, self.config.max_ee_step / norm) if norm > 0 else 1.0
        bounded = replace(action, dx=action.dx * scale, dy=action.dy * scale,
                          dz=action.dz * scale, gripper=gripper)
        return GateResult(bounded, True, f'end-effector step {norm:.3f} m bounded to '
                          f'{self.config.max_ee_step:.3f} m', clamped=True)
