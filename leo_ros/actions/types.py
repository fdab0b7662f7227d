# noqa: A005  (leo_ros.actions.types is a submodule: it shadows nothing in Python 3)
"""
Typed actions: what the policy decides and the robot executes (pure Python, no ROS).

Every action is in the fixed frame (``map``): metres and radians. ``to_dict``/``action_from_dict``
give the JSON form used in datasets.
"""

from dataclasses import asdict, dataclass
import math

NAV_STEP_KINDS = ('forward', 'turn_left', 'turn_right', 'stop')


def wrap_angle(angle: float) -> float:
    """Wrap an angle to [-pi, pi)."""
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


@dataclass(frozen=True)
class NavGoal:
    """Drive the base to (x, y) and face ``yaw``."""

    x: float
    y: float
    yaw: float
    kind = 'nav_goal'


@dataclass(frozen=True)
class NavStep:
    """One discrete navigation step (LEO's navigation action space)."""

    step: str
    kind = 'nav_step'

    def __post_init__(self):
        if self.step not in NAV_STEP_KINDS:
            raise ValueError(f'NavStep.step must be one of {NAV_STEP_KINDS}, got {self.step!r}')


@dataclass(frozen=True)
class PickPlace:
    """Pick at one gripper pose and place at another (CLIPort-style), top-down grasps."""

    pick_x: float
    pick_y: float
    pick_z: float
    pick_yaw: float
    place_x: float
    place_y: float
    place_z: float
    place_yaw: float
    kind = 'pick_place'


@dataclass(frozen=True)
class EEDelta:
    """Move the end effector by a small displacement and set the gripper (0 closed, 1 open)."""

    dx: float
    dy: float
    dz: float
    dyaw: float
    gripper: float
    kind = 'ee_delta'


ACTION_TYPES = {cls.kind: cls for cls in (NavGoal, NavStep, PickPlace, EEDelta)}


def to_dict(action) -> dict:
    """Return the JSON form of an action: its fields plus ``kind``."""
    return {'kind': action.kind, **asdict(action)}


def action_from_dict(data: dict):
    """Build an action from its JSON form; a bad ``kind`` raises ValueError naming it."""
    data = dict(data)
    kind = data.pop('kind', None)
    if kind not in ACTION_TYPES:
        raise ValueError(f'unknown action kind {kind!r}; expected one of {sorted(ACTION_TYPES)}')
    return ACTION_TYPES[kind](**data)
