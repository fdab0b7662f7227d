"""
The action workspace and a demonstration sampler (pure numpy, no ROS).

``WorkspaceConfig`` bounds every continuous action value; the tokenizers read their ranges from
it. ``sample_demonstrations`` draws actions uniformly over the workspace: it stands in for the
data engine's expert actions until they exist, and the tokenizers' trainers take the same plain
arrays (``actions_to_arrays``) that expert actions will give.
"""

from dataclasses import asdict, dataclass
import math

from leo_ros.actions.types import ACTION_TYPES, NAV_STEP_KINDS, NavStep, wrap_angle
import numpy as np

#: action kind -> names of its vector components, in order
ACTION_FIELDS = {
    'nav_goal': ('x', 'y', 'yaw'),
    'pick_place': ('pick_x', 'pick_y', 'pick_z', 'pick_yaw',
                   'place_x', 'place_y', 'place_z', 'place_yaw'),
    'ee_delta': ('dx', 'dy', 'dz', 'dyaw', 'gripper'),
}
#: kinds whose values are continuous (the others are discrete)
CONTINUOUS_KINDS = tuple(ACTION_FIELDS)


@dataclass
class WorkspaceConfig:
    """Bounds of every continuous action value, in the fixed frame [m, rad]."""

    x_min: float = -5.0
    x_max: float = 5.0
    y_min: float = -5.0
    y_max: float = 5.0
    z_min: float = 0.0
    z_max: float = 1.5
    #: end-effector displacement per EEDelta step, each axis in [-ee_max, ee_max] [m]
    ee_max: float = 0.1
    #: end-effector yaw change per EEDelta step in [-ee_yaw_max, ee_yaw_max] [rad]
    ee_yaw_max: float = math.pi / 4

    def __post_init__(self):
        for low, high in (('x_min', 'x_max'), ('y_min', 'y_max'), ('z_min', 'z_max')):
            if not getattr(self, low) < getattr(self, high):
                raise ValueError(f'WorkspaceConfig.{low} must be < {high}, got '
                                 f'{getattr(self, low)} >= {getattr(self, high)}')
        for name in ('ee_max', 'ee_yaw_max'):
            if not getattr(self, name) > 0:
                raise ValueError(f'WorkspaceConfig.{name} must be > 0, got {getattr(self, name)}')

    def to_dict(self) -> dict:
        return asdict(self)

    def field_range(self, field: str) -> tuple:
        """
        Return ``(low, high, periodic)`` of one action field.

        :param field: a name from ``ACTION_FIELDS``
        """
        base = field.split('_')[-1] if field.startswith(('pick_', 'place_')) else field
        if base in ('x', 'y', 'z'):
            return getattr(self, f'{base}_min'), getattr(self, f'{base}_max'), False
        if base == 'yaw':
            return -math.pi, math.pi, True
        if base in ('dx', 'dy', 'dz'):
            return -self.ee_max, self.ee_max, False
        if base == 'dyaw':
            return -self.ee_yaw_max, self.ee_yaw_max, False
        if base == 'gripper':
            return 0.0, 1.0, False
        raise ValueError(f'unknown action field {field!r}')


def action_to_vector(action) -> np.ndarray:
    """Return a continuous action's values in ``ACTION_FIELDS`` order, (D,) float64."""
    if action.kind not in ACTION_FIELDS:
        raise ValueError(f'action kind {action.kind!r} is not continuous')
    return np.array([getattr(action, name) for name in ACTION_FIELDS[action.kind]], np.float64)


def vector_to_action(kind: str, vector):
    """Build a typed action from its values in ``ACTION_FIELDS`` order; angles are wrapped."""
    if kind not in ACTION_FIELDS:
        raise ValueError(f'action kind {kind!r} is not continuous')
    names = ACTION_FIELDS[kind]
    vector = np.asarray(vector, np.float64).reshape(-1)
    if len(vector) != len(names):
        raise ValueError(f'{kind} needs {len(names)} values, got {len(vector)}')
    values = {name: (wrap_angle(float(v)) if name.endswith('yaw') and name != 'dyaw'
                     else float(v)) for name, v in zip(names, vector)}
    return ACTION_TYPES[kind](**values)


def actions_to_arrays(actions) -> dict:
    """Group continuous actions by kind: ``{kind: (N_kind, D_kind) float64}``; others skipped."""
    grouped = {}
    for action in actions:
        if action.kind in ACTION_FIELDS:
            grouped.setdefault(action.kind, []).append(action_to_vector(action))
    return {kind: np.stack(rows) for kind, rows in grouped.items()}


def sample_demonstrations(count: int, workspace: WorkspaceConfig = None, rng=None,
                          kinds=CONTINUOUS_KINDS + ('nav_step',)) -> list:
    """
    Draw ``count`` actions uniformly over the workspace, kinds in turn.

    Positions are uniform in the workspace box, yaws uniform in [-pi, pi), EEDelta displacements
    uniform in their bounds and the gripper either closed (0) or open (1). This is the stand-in
    for expert demonstrations until the data engine provides them.

    :param rng: numpy Generator (default seeded 0)
    """
    workspace = workspace or WorkspaceConfig()
    rng = rng if rng is not None else np.random.default_rng(0)
    actions = []
    for index in range(count):
        kind = kinds[index % len(kinds)]
        if kind == 'nav_step':
            actions.append(NavStep(NAV_STEP_KINDS[rng.integers(len(NAV_STEP_KINDS))]))
            continue
        values = []
        for name in ACTION_FIELDS[kind]:
            low, high, _ = workspace.field_range(name)
            values.append(float(rng.integers(2)) if name == 'gripper' else rng.uniform(low, high))
        actions.append(vector_to_action(kind, values))
    return actions


def sample_action_arrays(count: int, workspace: WorkspaceConfig = None, rng=None,
                         kinds=CONTINUOUS_KINDS) -> dict:
    """
    Draw ``count`` actions of each continuous kind as arrays.

    The law of ``sample_demonstrations``, vectorised for large tokenizer training sets.

    :return: ``{kind: (count, D) float64}`` in ``ACTION_FIELDS`` order
    """
    workspace = workspace or WorkspaceConfig()
    rng = rng if rng is not None else np.random.default_rng(0)
    arrays = {}
    for kind in kinds:
        columns = []
        for name in ACTION_FIELDS[kind]:
            low, high, _ = workspace.field_range(name)
            columns.append(rng.integers(0, 2, count).astype(np.float64) if name == 'gripper'
                           else rng.uniform(low, high, count))
        arrays[kind] = np.stack(columns, axis=1)
    return arrays


def position_yaw_errors(kind: str, truth, decoded) -> tuple:
    """
    Return per-action position error [m] and yaw error [rad] between two value arrays.

    Position error is the Euclidean error of each position in the action (the worse of pick and
    place for PickPlace); yaw error is the wrapped absolute error (the worse of both yaws).

    :param truth: (N, D) values in ``ACTION_FIELDS[kind]`` order
    :param decoded: (N, D) the same after a tokenizer round trip
    :return: (N,) position errors, (N,) yaw errors
    """
    truth, decoded = np.asarray(truth, np.float64), np.asarray(decoded, np.float64)
    diff = decoded - truth
    if kind == 'nav_goal':
        pos = np.linalg.norm(diff[:, :2], axis=1)
        yaw = np.abs(_wrap(diff[:, 2]))
    elif kind == 'pick_place':
        pos = np.maximum(np.linalg.norm(diff[:, 0:3], axis=1),
                         np.linalg.norm(diff[:, 4:7], axis=1))
        yaw = np.maximum(np.abs(_wrap(diff[:, 3])), np.abs(_wrap(diff[:, 7])))
    elif kind == 'ee_delta':
        pos = np.linalg.norm(diff[:, :3], axis=1)
        yaw = np.abs(diff[:, 3])
    else:
        raise ValueError(f'action kind {kind!r} is not continuous')
    return pos, yaw


def _wrap(angles):
    return (angles + np.pi) % (2 * np.pi) - np.pi
