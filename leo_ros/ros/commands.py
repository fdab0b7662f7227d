"""Decoded actions -> the messages robots consume (pure functions, no node)."""

from geometry_msgs.msg import Point, Pose, PoseStamped, Twist, TwistStamped
from leo_ros.actions.types import EEDelta, NavGoal, PickPlace
from leo_ros.ros.conversions import pose_stamped, to_stamp, yaw_to_quaternion


def nav_goal_to_pose_stamped(goal: NavGoal, frame_id='map', stamp=None):
    """Return a navigation goal as a PoseStamped in the fixed frame (/goal_pose, Nav2)."""
    return pose_stamped(goal.x, goal.y, goal.yaw, frame_id=frame_id, stamp=stamp)


def twist(linear=0.0, angular=0.0) -> Twist:
    """Return a planar base velocity."""
    msg = Twist()
    msg.linear.x = float(linear)
    msg.angular.z = float(angular)
    return msg


def _pose(x, y, z, yaw) -> Pose:
    return Pose(position=Point(x=float(x), y=float(y), z=float(z)),
                orientation=yaw_to_quaternion(yaw))


def manipulator_command(action, frame_id='map', stamp=None, object_id=0):
    """
    Return a PickPlace or EEDelta as a leo_ros/ManipulatorCommand.

    For EEDelta, ``place_pose`` carries the displacement (position) and yaw change.
    """
    from leo_ros.msg import ManipulatorCommand
    msg = ManipulatorCommand()
    msg.header.frame_id = frame_id
    msg.header.stamp = to_stamp(stamp)
    msg.object_id = int(object_id)
    if isinstance(action, PickPlace):
        msg.kind = ManipulatorCommand.KIND_PICK_PLACE
        msg.pick_pose = _pose(action.pick_x, action.pick_y, action.pick_z, action.pick_yaw)
        msg.place_pose = _pose(action.place_x, action.place_y, action.place_z,
                               action.place_yaw)
        msg.gripper = 1.0        # open after placing
    elif isinstance(action, EEDelta):
        msg.kind = ManipulatorCommand.KIND_EE_DELTA
        msg.place_pose = _pose(action.dx, action.dy, action.dz, action.dyaw)
        msg.gripper = float(action.gripper)
    else:
        raise TypeError(f'no manipulator command for {type(action).__name__}')
    return msg


def ee_twist_stamped(action: EEDelta, frame_id, duration, stamp=None) -> TwistStamped:
    """
    Return an end-effector step as the velocity that covers it in ``duration`` seconds.

    MoveIt Servo's input: linear [m/s] and angular [rad/s] in ``frame_id`` (the base frame,
    where EEDelta is expressed).
    """
    if not duration > 0:
        raise ValueError(f'duration must be > 0, got {duration}')
    msg = TwistStamped()
    msg.header.frame_id = frame_id
    msg.header.stamp = to_stamp(stamp)
    msg.twist.linear.x = float(action.dx) / duration
    msg.twist.linear.y = float(action.dy) / duration
    msg.twist.linear.z = float(action.dz) / duration
    msg.twist.angular.z = float(action.dyaw) / duration
    return msg


def zero_twist_stamped(frame_id, stamp=None) -> TwistStamped:
    """Return a TwistStamped that holds the end effector still."""
    msg = TwistStamped()
    msg.header.frame_id = frame_id
    msg.header.stamp = to_stamp(stamp)
    return msg


def grasp_poses(action: PickPlace, frame_id, pregrasp_offset, stamp=None):
    """
    Return the (pre-grasp, grasp, place) PoseStamped targets of a pick-and-place.

    The grasp is top-down at the pick pose; the pre-grasp lies ``pregrasp_offset`` above it.
    """
    def stamped(x, y, z, yaw):
        return pose_stamped(x, y, yaw, frame_id=frame_id, stamp=stamp, z=z)
    grasp = stamped(action.pick_x, action.pick_y, action.pick_z, action.pick_yaw)
    pregrasp = stamped(action.pick_x, action.pick_y, action.pick_z + pregrasp_offset,
                       action.pick_yaw)
    place = stamped(action.place_x, action.place_y, action.place_z, action.place_yaw)
    return pregrasp, grasp, place


def gripper_goal(position, max_effort):
    """Return a control_msgs/GripperCommand goal (needs control_msgs)."""
    from control_msgs.action import GripperCommand
    goal = GripperCommand.Goal()
    goal.command.position = float(position)
    goal.command.max_effort = float(max_effort)
    return goal


def navigate_to_pose_goal(pose: PoseStamped):
    """Return a nav2_msgs/NavigateToPose goal (needs nav2_msgs)."""
    from nav2_msgs.action import NavigateToPose
    return NavigateToPose.Goal(pose=pose)


def stop_command(frame_id='map', stamp=None):
    """Return the ManipulatorCommand that halts the arm."""
    from leo_ros.msg import ManipulatorCommand
    msg = ManipulatorCommand(kind=ManipulatorCommand.KIND_STOP)
    msg.header.frame_id = frame_id
    msg.header.stamp = to_stamp(stamp)
    return msg


def action_tokens(kind, tokenizer, token_ids, tokens, frame_id='map', stamp=None):
    """Return a leo_ros/ActionTokens message."""
    from leo_ros.msg import ActionTokens
    msg = ActionTokens(kind=kind, tokenizer=tokenizer, token_ids=[int(t) for t in token_ids],
                       tokens=[str(t) for t in tokens])
    msg.header.frame_id = frame_id
    msg.header.stamp = to_stamp(stamp)
    return msg
