"""
The action kinds, described once (pure Python, no ROS).

Every kind the policy can decide has one entry: its typed action (``leo_ros.actions.types``),
its marker token, its grounded payload (how many object tokens name it), a description, which
of its fields are poses in the fixed frame (so the robot-frame transform is generic), the
safety gate's rule, what it moves, and the ROS outputs that carry it. Decoding, the frame
transforms, the safety gate and the policy node look kinds up here, so that a new kind is a
dataclass in ``types.py`` and an entry below (plus its gate rule and ROS output, where those
are new).
"""

from dataclasses import dataclass, replace
import math

from leo_ros.actions.types import EEDelta, NavGoal, NavStep, PickPlace, wrap_angle


@dataclass(frozen=True)
class ActionKind:
    """
    What the code needs to know about one action kind.

    :param name: the kind ('nav_goal'); its marker token is ``<name>``
    :param action_type: the frozen dataclass of ``leo_ros.actions.types``
    :param description: what it does (docs, diagnostics)
    :param text: a format string over its fields: the answer text of the action
    :param objects: grounded payload: object tokens after the marker (0: not grounded)
    :param poses: (x, y, yaw) field-name triples that are poses in the fixed frame (z is not
        affected by the robot frame); others are relative to the robot
    :param moves: 'base' or 'arm'
    :param gate: the ``SafetyGate`` rule that checks it ('goal', 'step', 'pick_place',
        'ee_delta')
    :param command: how the policy node sends it: its ``_send_<command>`` method
        ('navigate': Nav2 or goal_pose, 'step': cmd_vel, 'manipulate': the manipulator outputs)
    :param outputs: the ROS outputs that carry it (``docs/agent.md``)
    """

    name: str
    action_type: type
    description: str
    text: str
    objects: int = 0
    poses: tuple = ()
    moves: str = 'base'
    gate: str = ''
    command: str = ''
    outputs: tuple = ()

    @property
    def marker(self) -> str:
        return f'<{self.name}>'

    def describe(self, action) -> str:
        """Return the action as an answer text."""
        return self.text.format(**action.__dict__)

    def to_robot_frame(self, action, pose):
        """Return the action with its poses in the robot frame (x forward, y left)."""
        return self._transform(action, pose, inverse=False)

    def from_robot_frame(self, action, pose):
        """Inverse of :meth:`to_robot_frame`."""
        return self._transform(action, pose, inverse=True)

    def _transform(self, action, pose, inverse):
        x0, y0, yaw0 = (float(v) for v in pose)
        c, s = math.cos(yaw0), math.sin(yaw0)
        changes = {}
        for fx, fy, fyaw in self.poses:
            x, y, yaw = getattr(action, fx), getattr(action, fy), getattr(action, fyaw)
            if inverse:
                changes.update({fx: x0 + c * x - s * y, fy: y0 + s * x + c * y,
                                fyaw: wrap_angle(yaw + yaw0)})
            else:
                dx, dy = x - x0, y - y0
                changes.update({fx: c * dx + s * dy, fy: -s * dx + c * dy,
                                fyaw: wrap_angle(yaw - yaw0)})
        return replace(action, **{k: float(v) for k, v in changes.items()})


KINDS = {kind.name: kind for kind in (
    ActionKind('nav_goal', NavGoal, 'drive the base to a pose in the fixed frame',
               'navigate to ({x:.2f}, {y:.2f}, yaw {yaw:.2f})', objects=1,
               poses=(('x', 'y', 'yaw'),), gate='goal', command='navigate',
               outputs=('navigate_to_pose (Nav2)', 'goal_pose')),
    ActionKind('nav_step', NavStep, 'one discrete base step (LEO navigation)', 'step {step}',
               gate='step', command='step', outputs=('cmd_vel',)),
    ActionKind('pick_place', PickPlace, 'pick at one pose and place at another (top-down)',
               'pick at ({pick_x:.2f}, {pick_y:.2f}, {pick_z:.2f}), place at ({place_x:.2f}, '
               '{place_y:.2f}, {place_z:.2f})', objects=2,
               poses=(('pick_x', 'pick_y', 'pick_yaw'), ('place_x', 'place_y', 'place_yaw')),
               moves='arm', gate='pick_place', command='manipulate',
               outputs=('leo/manipulator_command', 'leo/pregrasp_pose', 'leo/grasp_pose',
                        'leo/place_pose', 'gripper_cmd (control_msgs)')),
    ActionKind('ee_delta', EEDelta, 'move the end effector by a small step, set the gripper',
               'end effector by ({dx:.2f}, {dy:.2f}, {dz:.2f}), gripper {gripper:.1f}',
               moves='arm', gate='ee_delta', command='manipulate',
               outputs=('leo/manipulator_command', 'leo/ee_twist', 'gripper_cmd')),
)}
#: grounded kinds -> object tokens after their marker
GROUNDED = {name: kind.objects for name, kind in KINDS.items() if kind.objects}


def kind_of(action) -> ActionKind:
    """Return the registry entry of a typed action (or of a kind name)."""
    name = action if isinstance(action, str) else action.kind
    if name not in KINDS:
        raise ValueError(f'unknown action kind {name!r}; known: {sorted(KINDS)}')
    return KINDS[name]
