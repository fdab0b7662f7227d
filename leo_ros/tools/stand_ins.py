"""
Stand-in peers for tests and benchmarks of leo_ros's ROS interfaces (not for robots).

``python -m leo_ros.tools.stand_ins nav2`` serves Nav2's ``navigate_to_pose``
(nav2_msgs/NavigateToPose) for a virtual base: it drives the base towards each goal at
``speed`` (publishing ``cmd_vel`` as Nav2's controller does and ``/tf`` map -> odom ->
base_link), sends feedback with the distance remaining, succeeds within 5 cm, and stops on
cancel (at once: a cancel wakes its 20 Hz loop). ``mode:=reject`` rejects every goal,
``mode:=abort`` aborts each after 0.3 s. ``... stand_ins gripper`` serves control_msgs'
``GripperCommand`` (``gripper_controller/gripper_cmd``): it reaches the position in 0.3 s or
stops on cancel. Both report what happened on ``leo_stand_in/events`` (std_msgs/String).

``... stand_ins policy`` runs the real policy_node with
:class:`~leo_ros.agent.stand_in_policies.ScriptedPolicy` as its model, so that a test or
``leo-bench stop`` can ask for one kind of action and see where it goes out.
The trained policy's decisions are measured by ``leo-eval`` and the end-to-end test instead.
:class:`MotionWatcher` is the robot's side for tests and benchmarks.
"""

import math
import sys
import threading
import time

from leo_ros.ros.process import wait_until
from leo_ros.sim.geometry import pose_matrix
import numpy as np

#: every topic a motion command can go out on
MOTION_TOPICS = ('cmd_vel', 'goal_pose', 'leo/manipulator_command', 'leo/ee_twist',
                 'leo/pregrasp_pose', 'leo/grasp_pose', 'leo/place_pose')


class _Events:
    def __init__(self, node):
        from std_msgs.msg import String
        self._string = String
        self._pub = node.create_publisher(String, 'leo_stand_in/events', 50)

    def say(self, text):
        self._pub.publish(self._string(data=text))


class Nav2StandIn:
    """A NavigateToPose server driving a virtual base (see the module docstring)."""

    def __init__(self, node):
        from geometry_msgs.msg import Twist
        from leo_ros.ros.tf import TransformPublisher
        from nav2_msgs.action import NavigateToPose
        from rclpy.action import ActionServer, CancelResponse, GoalResponse
        from rclpy.callback_groups import ReentrantCallbackGroup
        self.node = node
        self.mode = node.declare_parameter('mode', 'follow').value
        self.speed = node.declare_parameter('speed', 0.5).value
        self.pose = [node.declare_parameter('x', 0.0).value,
                     node.declare_parameter('y', 0.0).value, 0.0]
        self.odom = (node.declare_parameter('odom_x', 0.0).value,
                     node.declare_parameter('odom_y', 0.0).value)
        self.events = _Events(node)
        self.tf = TransformPublisher(node)
        self.cmd_vel = node.create_publisher(Twist, 'cmd_vel', 10)
        self.lock = threading.Lock()
        self.action = NavigateToPose
        group = ReentrantCallbackGroup()
        self.cancelled = threading.Event()     # wakes the control loop at once on a cancel

        def on_cancel(_):
            self.cancelled.set()
            return CancelResponse.ACCEPT
        self.server = ActionServer(
            node, NavigateToPose, 'navigate_to_pose', self._execute,
            goal_callback=lambda _: GoalResponse.REJECT if self.mode == 'reject'
            else GoalResponse.ACCEPT,
            cancel_callback=on_cancel, callback_group=group)
        node.create_timer(0.05, self._publish_tf, callback_group=group)

    def _publish_tf(self):
        from leo_ros.ros.conversions import matrix_to_transform_stamped
        stamp = self.node.get_clock().now().to_msg()
        with self.lock:
            x, y, yaw = self.pose
        odom = pose_matrix(*self.odom, 0.0, 0.0)
        base = pose_matrix(x - self.odom[0], y - self.odom[1], 0.0, yaw)
        self.tf.send([matrix_to_transform_stamped(odom, 'map', 'odom', stamp),
                      matrix_to_transform_stamped(base, 'odom', 'base_link', stamp)])

    def _execute(self, goal_handle):
        from geometry_msgs.msg import Twist
        result = self.action.Result()
        goal = goal_handle.request.pose.pose.position
        self.events.say(f'nav2 accepted {goal.x:.2f} {goal.y:.2f} '
                        f'{goal_handle.request.pose.header.frame_id}')
        start = time.monotonic()
        while True:
            if goal_handle.is_cancel_requested:
                self.cmd_vel.publish(Twist())
                goal_handle.canceled()
                self.events.say('nav2 canceled')
                return result
            if self.mode == 'abort' and time.monotonic() - start > 0.3:
                self.cmd_vel.publish(Twist())
                goal_handle.abort()
                result.error_code, result.error_msg = 9000, 'stand-in: no path'
                self.events.say('nav2 aborted')
                return result
            with self.lock:
                dx, dy = goal.x - self.pose[0], goal.y - self.pose[1]
                distance = math.hypot(dx, dy)
                if distance < 0.05:
                    break
                step = min(distance, self.speed * 0.05)
                self.pose[0] += step * dx / distance
                self.pose[1] += step * dy / distance
                self.pose[2] = math.atan2(dy, dx)
            twist = Twist()
            twist.linear.x = self.speed
            self.cmd_vel.publish(twist)
            feedback = self.action.Feedback(distance_remaining=float(distance))
            feedback.current_pose.header.frame_id = 'map'
            goal_handle.publish_feedback(feedback)
            _wait_for_cancel(self.cancelled, goal_handle, 0.05)
        self.cmd_vel.publish(Twist())
        goal_handle.succeed()
        self.events.say('nav2 succeeded')
        return result


class GripperStandIn:
    """A GripperCommand server (see the module docstring)."""

    def __init__(self, node):
        from control_msgs.action import GripperCommand
        from rclpy.action import ActionServer, CancelResponse
        from rclpy.callback_groups import ReentrantCallbackGroup
        self.action = GripperCommand
        self.events = _Events(node)
        self.cancelled = threading.Event()

        def on_cancel(_):
            self.cancelled.set()
            return CancelResponse.ACCEPT
        self.server = ActionServer(
            node, GripperCommand, 'gripper_controller/gripper_cmd', self._execute,
            cancel_callback=on_cancel, callback_group=ReentrantCallbackGroup())

    def _execute(self, goal_handle):
        command = goal_handle.request.command
        self.events.say(f'gripper goal {command.position:.3f} {command.max_effort:.1f}')
        result = self.action.Result(position=command.position)
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            if goal_handle.is_cancel_requested:
                goal_handle.canceled()
                self.events.say('gripper canceled')
                return result
            _wait_for_cancel(self.cancelled, goal_handle, 0.02)
        result.reached_goal = True
        goal_handle.succeed()
        return result


class MotionWatcher:
    """
    The robot's side of a running agent: scene, transforms, watched outputs, service calls.

    For tests and benchmarks: it publishes a scene and the base's transform, records every
    message on the motion topics and the stand-ins' events with their arrival times, and calls
    the agent's services, parameters and lifecycle transitions.
    """

    def __init__(self, node):
        from geometry_msgs.msg import PoseStamped, Twist, TwistStamped
        from leo_ros.msg import ManipulatorCommand, SceneObjects
        from leo_ros.ros.instruct_client import InstructClient
        from leo_ros.ros.tf import TransformPublisher
        from rclpy.qos import qos_profile_sensor_data
        from std_msgs.msg import String
        self.node = node
        self.lock = threading.Lock()
        self.received = {topic: [] for topic in MOTION_TOPICS + ('leo_stand_in/events',)}
        types = {'cmd_vel': Twist, 'goal_pose': PoseStamped,
                 'leo/manipulator_command': ManipulatorCommand, 'leo/ee_twist': TwistStamped,
                 'leo/pregrasp_pose': PoseStamped, 'leo/grasp_pose': PoseStamped,
                 'leo/place_pose': PoseStamped, 'leo_stand_in/events': String}
        for topic, kind in types.items():
            node.create_subscription(kind, topic, self._keeper(topic), 50)
        self.instruct = InstructClient(node, 'leo/instruct')
        self.scenes = node.create_publisher(SceneObjects, 'leo/scene_objects',
                                            qos_profile_sensor_data)
        self.tf = TransformPublisher(node)
        self._scene = None
        self._stop = threading.Event()
        self._thread = None

    def _keeper(self, topic):
        def keep(msg):
            with self.lock:
                self.received[topic].append((time.monotonic(), msg))
        return keep

    def received_since(self, topic, since=0.0):
        """Return [(arrival time, message)] of ``topic`` that arrived after ``since``."""
        with self.lock:
            return [(at, msg) for at, msg in self.received[topic] if at >= since]

    def messages(self, topic, since=0.0):
        return [msg for _, msg in self.received_since(topic, since)]

    def motion_since(self, since):
        """Return {topic: messages} of every motion topic that got something after ``since``."""
        return {topic: self.messages(topic, since) for topic in MOTION_TOPICS
                if self.messages(topic, since)}

    def events(self, since=0.0):
        return [msg.data for msg in self.messages('leo_stand_in/events', since)]

    def place_base(self, x=0.0, y=0.0, yaw=0.0, parent='map'):
        """Publish a static transform parent -> base_link (the robot stands still)."""
        from leo_ros.ros.conversions import matrix_to_transform_stamped
        self.tf.send_static([matrix_to_transform_stamped(
            pose_matrix(x, y, 0.0, yaw), parent, 'base_link',
            self.node.get_clock().now().to_msg())])

    def publish_scene(self, frame_id='map', centers=((1.0, 0.5, 0.4), (2.0, 1.0, 0.4)),
                      labels=('mug', 'chair')):
        """Keep publishing a scene of small objects at ``centers`` every 0.2 s."""
        from leo_ros.ros.conversions import scene_tokens_to_msg
        from leo_ros.scene_tokens import SceneTokens
        rng = np.random.default_rng(0)
        clouds = [rng.normal(size=(200, 3)) * 0.05 + center for center in centers]
        message = scene_tokens_to_msg(SceneTokens.from_object_clouds(
            clouds, points_per_object=64, frame_id=frame_id, labels=list(labels)))
        with self.lock:
            self._scene = message
        if self._thread is None:
            self._thread = threading.Thread(target=self._publish_scenes, daemon=True)
            self._thread.start()

    def _publish_scenes(self):
        while not self._stop.is_set():
            with self.lock:
                message = self._scene
            message.header.stamp = self.node.get_clock().now().to_msg()
            self.scenes.publish(message)
            self._stop.wait(0.2)

    def close(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def call(self, service_type, name, request, timeout=20.0):
        client = self.node.create_client(service_type, name)
        try:
            _require(client.wait_for_service(timeout_sec=timeout), f'{name} never appeared')
            future = client.call_async(request)
            _require(wait_until(future.done, timeout=timeout, period=0.005), f'{name} silent')
            return future.result()
        finally:
            self.node.destroy_client(client)

    def activate(self, node_name='policy_node'):
        """Configure and activate a lifecycle node, as leo_lifecycle_manager does."""
        from leo_ros.ros.lifecycle_client import change_node_state
        for label in ('configure', 'activate'):
            success, why = change_node_state(self.node, node_name, label, timeout=20.0)
            _require(success, f'{node_name}: {why}')

    def wait_action_server(self, action_type, name, timeout=60.0):
        """Wait until an action server (a stand-in peer) is up."""
        from rclpy.action import ActionClient
        client = ActionClient(self.node, action_type, name)
        try:
            _require(client.wait_for_server(timeout_sec=timeout), f'{name} never appeared')
        finally:
            client.destroy()

    def lifecycle_state(self, node_name):
        from lifecycle_msgs.srv import GetState
        return self.call(GetState, f'{node_name}/get_state', GetState.Request()) \
            .current_state.label

    def set_parameters(self, node_name='policy_node', atomically=False, **values):
        """Set parameters on a running node; return the list of SetParametersResult."""
        from rcl_interfaces.srv import SetParameters, SetParametersAtomically
        from rclpy.parameter import Parameter
        parameters = [Parameter(name, value=value).to_parameter_msg()
                      for name, value in values.items()]
        if atomically:
            reply = self.call(SetParametersAtomically, f'{node_name}/set_parameters_atomically',
                              SetParametersAtomically.Request(parameters=parameters))
            return [reply.result]
        reply = self.call(SetParameters, f'{node_name}/set_parameters',
                          SetParameters.Request(parameters=parameters))
        return list(reply.results)

    def get_parameters(self, *names, node_name='policy_node'):
        from rcl_interfaces.srv import GetParameters
        from rclpy.parameter import parameter_value_to_python
        reply = self.call(GetParameters, f'{node_name}/get_parameters',
                          GetParameters.Request(names=list(names)))
        return [parameter_value_to_python(value) for value in reply.values]

    def ready(self, timeout=60.0):
        """Wait until the node answers a question with a scene and a pose."""
        _require(self.instruct.wait(timeout), 'leo/instruct never appeared')
        replies = []

        def answered():
            replies.append(self.instruct.call('where are you', timeout=20.0, spin=False))
            return replies[-1].success
        _require(wait_until(answered, timeout=timeout, period=0.5), replies[-1:])
        return replies[-1]

    def execute(self, instruction, timeout=30.0, cancel_after=None, stop_after=None):
        """
        Run ``leo/execute``; return (status, result, feedback list).

        :param cancel_after: cancel the goal once feedback shows this phase ('waiting')
        :param stop_after: call leo/stop once feedback shows this phase
        """
        from leo_ros.action import ExecuteInstruction
        from rclpy.action import ActionClient
        from std_srvs.srv import Trigger
        client = ActionClient(self.node, ExecuteInstruction, 'leo/execute')
        feedback = []
        try:
            _require(client.wait_for_server(timeout_sec=20.0), 'leo/execute never appeared')
            sent = client.send_goal_async(ExecuteInstruction.Goal(instruction=instruction),
                                          feedback_callback=lambda m: feedback.append(
                                              m.feedback))
            _require(wait_until(sent.done, timeout=20.0), 'goal not answered')
            handle = sent.result()
            _require(handle.accepted, 'not accepted')
            result = handle.get_result_async()
            trigger = cancel_after or stop_after
            if trigger:
                _require(wait_until(lambda: any(f.phase == trigger for f in feedback),
                                    timeout=timeout), [f.phase for f in feedback])
                if cancel_after:
                    handle.cancel_goal_async()
                else:
                    self.call(Trigger, 'leo/stop', Trigger.Request())
            _require(wait_until(result.done, timeout=timeout), 'no result')
            return result.result().status, result.result().result, feedback
        finally:
            client.destroy()


def _wait_for_cancel(event, goal_handle, period):
    """
    Sleep ``period`` unless a cancel arrives; then wait until the goal shows it.

    The cancel callback runs before rclpy marks the goal as canceling, so a loop woken by it
    checks again for a moment instead of sleeping another period.
    """
    if event.wait(period):
        deadline = time.monotonic() + period
        while not goal_handle.is_cancel_requested and time.monotonic() < deadline:
            time.sleep(0.001)
        event.clear()


def _require(condition, message):
    """Raise RuntimeError with ``message`` unless ``condition`` holds (no assert: -O)."""
    if not condition:
        raise RuntimeError(str(message))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    kind = argv[0] if argv else ''
    from leo_ros.ros.node_runner import run_node
    ros_argv = [sys.argv[0]] + argv[1:]
    if kind == 'nav2':
        return run_node('nav2_stand_in', Nav2StandIn, ros_argv, num_threads=4)
    if kind == 'gripper':
        return run_node('gripper_stand_in', GripperStandIn, ros_argv, num_threads=3)
    if kind == 'policy':
        from leo_ros.agent.stand_in_policies import ScriptedPolicy
        from leo_ros.nodes import policy_node
        return policy_node.main(ros_argv, load=lambda *_: ScriptedPolicy())
    print('usage: leo_stand_ins {nav2,gripper,policy} [--ros-args ...]', file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main())
