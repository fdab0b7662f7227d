"""
The policy's motion outputs: every topic and action client a gated action goes out on.

Navigation goes to Nav2's ``NavigateToPose`` action or, as the fallback, to ``goal_pose``;
never both. Steps go to ``cmd_vel``. Manipulation goes to ``leo/manipulator_command``
(leo_ros/ManipulatorCommand) and, each switchable, to the standard inputs of common arm stacks:
``leo/ee_twist`` (TwistStamped, MoveIt Servo), ``leo/pregrasp_pose``, ``leo/grasp_pose`` and
``leo/place_pose`` (PoseStamped), and a control_msgs ``GripperCommand`` action.
:meth:`MotionOutputs.halt` stops all of them.
"""

import threading

from leo_ros.actions.types import EEDelta, PickPlace
from leo_ros.ros.nav2_client import GoalError


class MotionOutputs:
    """
    Publishers and action clients for gated actions.

    :param node: rclpy Node
    :param options: the node's parameter values (navigation, publish_* switches, gripper_*)
    """

    def __init__(self, node, options, callback_group=None):
        from geometry_msgs.msg import PoseStamped, Twist, TwistStamped
        from leo_ros.msg import ManipulatorCommand
        self.node = node
        self.options = options
        self.notes = []            # what is off or missing, for diagnostics
        self.pub_goal = node.create_publisher(PoseStamped, 'goal_pose', 10)
        self.pub_cmd_vel = node.create_publisher(Twist, 'cmd_vel', 10)
        self.pub_manipulator = self.pub_ee_twist = self.pub_poses = None
        if options['publish_manipulator_command']:
            self.pub_manipulator = node.create_publisher(ManipulatorCommand,
                                                         'leo/manipulator_command', 10)
        if options['publish_ee_twist']:
            self.pub_ee_twist = node.create_publisher(TwistStamped, 'leo/ee_twist', 10)
        if options['publish_grasp_poses']:
            self.pub_poses = [node.create_publisher(PoseStamped, f'leo/{name}_pose', 10)
                              for name in ('pregrasp', 'grasp', 'place')]
        self.nav2 = self._client('nav2', options['navigation'] != 'goal_pose',
                                 options['nav2_action'], callback_group)
        self.gripper = self._client('gripper', options['use_gripper_action'],
                                    options['gripper_action'], callback_group)
        self._stream_stop = threading.Event()
        self._stream = None
        # A stream's twist and halt's zero twist never cross: after the zero, no twist follows.
        self._stream_lock = threading.Lock()
        self._gripper_closed = None
        self._last_mode = None         # how the last goal went out

    def _client(self, kind, wanted, name, callback_group):
        from leo_ros.ros import nav2_client
        if not wanted:
            return None
        try:
            if kind == 'nav2':
                return nav2_client.nav2_client(self.node, name, callback_group)
            return nav2_client.gripper_client(self.node, name, callback_group)
        except ImportError as error:
            package = 'nav2_msgs' if kind == 'nav2' else 'control_msgs'
            self.notes.append(f'{package} is not importable ({error}); {kind} action off')
            self.node.get_logger().warning(self.notes[-1])
            return None

    # --- navigation ----------------------------------------------------------------------
    def navigation_mode(self):
        """
        Return 'nav2' or 'goal_pose' for the next goal.

        :raises GoalError: navigation is 'nav2' but the action cannot be used
        """
        mode = self.options['navigation']
        if mode == 'goal_pose':
            return 'goal_pose'
        if self.nav2 is None:
            if mode == 'nav2':
                raise GoalError('navigation is nav2 but nav2_msgs is not importable')
            return 'goal_pose'
        if mode == 'auto' and not self.nav2.server_ready():
            return 'goal_pose'
        return 'nav2'

    def navigate(self, goal_pose, timeout, on_feedback=None):
        """
        Send a navigation goal (a PoseStamped in the fixed frame).

        :return: ``('nav2', handle)`` or ``('goal_pose', None)``
        :raises GoalError: Nav2 is required but absent, or rejected the goal
        """
        from leo_ros.ros.commands import navigate_to_pose_goal
        mode = self._last_mode = self.navigation_mode()
        if mode == 'nav2':
            return mode, self.nav2.send(navigate_to_pose_goal(goal_pose), timeout, on_feedback)
        self.pub_goal.publish(goal_pose)
        return mode, None

    # --- steps and manipulation ----------------------------------------------------------
    def step(self, velocity):
        """Publish a bounded base velocity (leo_ros.agent.safety.Velocity)."""
        from leo_ros.ros.commands import twist
        self.pub_cmd_vel.publish(twist(velocity.linear, velocity.angular))

    def manipulate(self, action, fixed_frame, base_frame, stamp, gripper_timeout):
        """
        Publish a PickPlace or EEDelta on every output that is on.

        :return: '' or a note on what did not go out (the gripper action)
        """
        from leo_ros.ros import commands
        if self.pub_manipulator is not None:
            self.pub_manipulator.publish(commands.manipulator_command(action, fixed_frame,
                                                                      stamp))
        if isinstance(action, PickPlace) and self.pub_poses is not None:
            for publisher, pose in zip(self.pub_poses, commands.grasp_poses(
                    action, fixed_frame, self.options['pregrasp_offset'], stamp)):
                publisher.publish(pose)
        if isinstance(action, EEDelta):
            if self.pub_ee_twist is not None:
                self._start_stream(commands.ee_twist_stamped(
                    action, base_frame, self.options['ee_twist_duration'], stamp))
            return self._gripper(action.gripper < 0.5, gripper_timeout)
        return ''

    def _gripper(self, close, timeout):
        if self.gripper is None or close == self._gripper_closed:
            return ''
        from leo_ros.ros.commands import gripper_goal
        position = self.options['gripper_closed_position' if close else 'gripper_open_position']
        try:
            self.gripper.send(gripper_goal(position, self.options['gripper_max_effort']),
                              timeout)
        except GoalError as error:
            return str(error)
        self._gripper_closed = close
        return ''

    def _start_stream(self, message):
        """
        Publish ``message`` at ee_twist_rate for ee_twist_duration, then a zero twist.

        A stream stopped early ends silently: :meth:`halt` has sent the zero twist already, and
        a replacing stream follows at once.
        """
        self._stop_stream()
        stop = self._stream_stop = threading.Event()
        period = 1.0 / self.options['ee_twist_rate']
        count = max(1, round(self.options['ee_twist_duration'] / period))

        def run():
            from leo_ros.ros.commands import zero_twist_stamped
            for _ in range(count):
                with self._stream_lock:
                    if stop.is_set():
                        return
                    message.header.stamp = self.node.get_clock().now().to_msg()
                    self.pub_ee_twist.publish(message)
                if stop.wait(period):
                    return
            self.pub_ee_twist.publish(zero_twist_stamped(
                message.header.frame_id, self.node.get_clock().now().to_msg()))

        self._stream = threading.Thread(target=run, name='leo_ee_twist', daemon=True)
        self._stream.start()

    def _stop_stream(self):
        self._stream_stop.set()
        if self._stream is not None:
            self._stream.join(timeout=1.0)
            self._stream = None

    # --- stop ----------------------------------------------------------------------------
    def halt(self, fixed_frame, base_frame, stamp, current_pose=None):
        """
        Stop every motion output at once.

        Zero ``cmd_vel``; cancel the Nav2 goal (or, when the last goal went out on goal_pose, a
        goal at ``current_pose``, a PoseStamped in the fixed frame, ends goal following); a STOP
        manipulator command, a zero twist and the gripper goal cancelled.
        """
        from leo_ros.ros import commands
        # Topics first (each publish is immediate), then the action cancels.
        self.pub_cmd_vel.publish(commands.twist(0.0, 0.0))
        if self.pub_manipulator is not None:
            self.pub_manipulator.publish(commands.stop_command(fixed_frame, stamp))
        if self.pub_ee_twist is not None:
            with self._stream_lock:
                self._stream_stop.set()
                self.pub_ee_twist.publish(commands.zero_twist_stamped(base_frame, stamp))
        if self.nav2 is not None and self.nav2.active:
            self.nav2.cancel()
        elif current_pose is not None and self._last_mode == 'goal_pose':
            self.pub_goal.publish(current_pose)
        if self.gripper is not None and self.gripper.active:
            self.gripper.cancel()
        if self.pub_ee_twist is not None:
            self._stop_stream()

    def cancel_navigation(self):
        """Cancel the Nav2 goal in flight, if any (a new instruction replaces it)."""
        if self.nav2 is not None and self.nav2.active:
            self.nav2.cancel()
