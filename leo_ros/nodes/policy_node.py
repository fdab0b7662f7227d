"""
policy_node: the LEO agent on ROS 2.

Keeps the newest scene objects, ego-view image and robot pose; serves instructions through
``leo/instruct`` (Instruct), ``leo/execute`` (ExecuteInstruction) and ``leo/instruction``
(std_msgs/String); publishes text on ``leo/response``, action tokens on ``leo/action_tokens``
and gated commands on ``goal_pose``, ``cmd_vel`` and ``leo/manipulator_command``;
``leo/stop`` (std_srvs/Trigger) cancels the running task and halts motion at once.

The model loads in the background after start-up (the node is up and says so on
``/diagnostics`` while it loads, and why if it fails); decisions run in a worker thread, one
instruction at a time: a second one gets a clear busy answer.
"""

from concurrent.futures import ThreadPoolExecutor
import math
import statistics
import sys
import threading
import time

from leo_ros.actions.types import NavGoal, NavStep
from leo_ros.agent.core import AgentBusy, AgentConfig, AgentCore
from leo_ros.agent.safety import SafetyConfig

#: ROS parameter -> (default, description); mapped once onto AgentConfig and SafetyConfig.
AGENT_PARAMETERS = {
    'model_path': ('', 'Policy directory; empty = the default model shipped with leo_ros'),
    'device': ('auto', "Torch device: 'auto' (cuda if available, else cpu), 'cpu', 'cuda:N'"),
    'dtype': ('auto', "Model dtype: 'auto' (bfloat16 on GPU, float32 on CPU), 'float32', "
              "'bfloat16', 'float16'"),
    'fixed_frame': ('map', 'Frame of navigation goals and manipulator poses (REP-105)'),
    'max_steps': (20, 'Most policy decisions one leo/execute task may take'),
    'goal_tolerance': (0.35, 'A navigation goal counts as reached within this distance [m]'),
    'goal_timeout': (60.0, 'Give up waiting for a navigation goal after this long [s]'),
}
SAFETY_PARAMETERS = {
    'map_min_x': (-5.0, 'Map bounds: goals must lie inside [m]'),
    'map_max_x': (5.0, 'Map bounds [m]'),
    'map_min_y': (-5.0, 'Map bounds [m]'),
    'map_max_y': (5.0, 'Map bounds [m]'),
    'workspace_min_z': (0.0, 'Lowest manipulator pose [m]'),
    'workspace_max_z': (1.5, 'Highest manipulator pose [m]'),
    'max_reach': (1.2, 'Farthest pick/place pose from the base [m]'),
    'max_linear_speed': (0.5, 'Speed limit for cmd_vel [m/s]'),
    'max_angular_speed': (1.0, 'Turn rate limit for cmd_vel [rad/s]'),
    'step_distance': (0.25, 'Distance of one forward step [m]'),
    'step_angle': (math.radians(30.0), 'Angle of one turn step [rad]'),
    'max_ee_step': (0.1, 'Largest end-effector displacement per command [m]'),
    'max_scene_age': (5.0, 'Refuse to act on a scene older than this [s]'),
    'out_of_bounds': ('clamp', "Goals outside the map: 'clamp' into it or 'refuse' them"),
    'dry_run': (False, 'Decode and report actions but publish no motion'),
}
NODE_PARAMETERS = {
    'use_nav2_action': (False, "Also send navigation goals to Nav2's navigate_to_pose action "
                        '(when nav2_msgs is importable)'),
    'manipulation_wait': (3.0, 'Seconds leo/execute waits for a manipulation command to finish'),
    'diagnostics_period': (1.0, 'Seconds between /diagnostics messages'),
    'torch_threads': (1, 'CPU threads for the policy (0: torch default); on a shared CPU one '
                      'thread avoids contention with perception and the simulator'),
}


def resolve_device(device, dtype):
    """Turn 'auto' into a concrete device (cuda when available) and dtype (bf16 on GPU)."""
    import torch
    if device == 'auto':
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if dtype == 'auto':
        dtype = 'bfloat16' if device.startswith('cuda') else 'float32'
    return device, dtype


def load_policy(model_path, device, dtype):
    """Load a policy directory (the default shipped model when ``model_path`` is empty)."""
    from leo_ros.train.default_model import load_policy as load_any_format
    device, dtype = resolve_device(device, dtype)
    return load_any_format(model_path or None, device=device, dtype=dtype)


class PolicyNode:
    """ROS adapter around :class:`AgentCore`; holds no model math."""

    def __init__(self, node, load=load_policy):
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseStamped, Twist
        from leo_ros.action import ExecuteInstruction
        from leo_ros.msg import ActionTokens, ManipulatorCommand, SceneObjects
        from leo_ros.srv import Instruct
        from nav_msgs.msg import Odometry
        from rclpy.action import ActionServer, CancelResponse
        from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image
        from std_msgs.msg import String
        from std_srvs.srv import Trigger

        self.node = node
        values = {}
        for table in (AGENT_PARAMETERS, SAFETY_PARAMETERS, NODE_PARAMETERS):
            values.update(self._declare(table))
        values['device'], values['dtype'] = resolve_device(values['device'], values['dtype'])
        if values['torch_threads'] > 0:
            import torch
            torch.set_num_threads(values['torch_threads'])
        safety = SafetyConfig(**{name: values[name] for name in SAFETY_PARAMETERS})
        self.config = AgentConfig(safety=safety,
                                  **{name: values[name] for name in AGENT_PARAMETERS})
        self.options = {name: values[name] for name in NODE_PARAMETERS}
        self.core = AgentCore(self.config, load)
        self.loading = True
        self.counts = {'instructions': 0, 'refused_busy': 0, 'refused_gate': 0, 'errors': 0}
        self._counts_lock = threading.Lock()  # services, plans and the timer run on other threads
        self.last_error = ''
        self._inputs = threading.Lock()
        self._scene_msg = self._image_msg = None
        self._converted = (None, None)
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix='leo_decide')

        inputs = MutuallyExclusiveCallbackGroup()
        serving = ReentrantCallbackGroup()
        node.create_subscription(SceneObjects, 'leo/scene_objects', self._on_scene,
                                 qos_profile_sensor_data, callback_group=inputs)
        node.create_subscription(Image, 'camera/image', self._on_image,
                                 qos_profile_sensor_data, callback_group=inputs)
        node.create_subscription(Odometry, 'odom', self._on_odom, qos_profile_sensor_data,
                                 callback_group=inputs)
        node.create_subscription(String, 'leo/instruction', self._on_instruction_topic, 10,
                                 callback_group=serving)
        node.create_service(Instruct, 'leo/instruct', self._on_instruct, callback_group=serving)
        node.create_service(Trigger, 'leo/stop', self._on_stop, callback_group=serving)
        self.execute_server = ActionServer(
            node, ExecuteInstruction, 'leo/execute', self._on_execute,
            cancel_callback=lambda _: CancelResponse.ACCEPT, callback_group=serving)
        self.pub_response = node.create_publisher(String, 'leo/response', 10)
        self.pub_tokens = node.create_publisher(ActionTokens, 'leo/action_tokens', 10)
        self.pub_goal = node.create_publisher(PoseStamped, 'goal_pose', 10)
        self.pub_cmd_vel = node.create_publisher(Twist, 'cmd_vel', 10)
        self.pub_manipulator = node.create_publisher(ManipulatorCommand,
                                                     'leo/manipulator_command', 10)
        self.pub_diagnostics = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        node.create_timer(self.options['diagnostics_period'], self._publish_diagnostics,
                          callback_group=inputs)
        self.nav2 = self._nav2_client() if self.options['use_nav2_action'] else None
        # Configuring: load the weights without blocking start-up; failure leaves us serving.
        threading.Thread(target=self._load, name='leo_load', daemon=True).start()

    # --- set-up ------------------------------------------------------------------------------
    def _declare(self, table):
        from rcl_interfaces.msg import ParameterDescriptor
        values = {}
        for name, (default, description) in table.items():
            values[name] = self.node.declare_parameter(
                name, default, ParameterDescriptor(description=description)).value
        return values

    def _nav2_client(self):
        try:
            from nav2_msgs.action import NavigateToPose
        except ImportError:
            self.node.get_logger().warning('use_nav2_action is set but nav2_msgs is not '
                                           'importable; publishing goal_pose only')
            return None
        from rclpy.action import ActionClient
        return ActionClient(self.node, NavigateToPose, 'navigate_to_pose')

    def _load(self):
        start = time.perf_counter()
        ok = self.core.load()
        self.loading = False
        if ok:
            self.node.get_logger().info(f'model ready on {self.core.device} in '
                                        f'{time.perf_counter() - start:.1f} s')
        else:
            self.last_error = self.core.load_error
            self.node.get_logger().error(self.core.load_error)

    # --- inputs: store only ------------------------------------------------------------------
    def _now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def _on_scene(self, msg):
        with self._inputs:
            self._scene_msg = (msg, self._now())

    def _on_image(self, msg):
        with self._inputs:
            self._image_msg = msg

    def _on_odom(self, msg):
        from leo_ros.ros.conversions import quaternion_to_yaw
        pose = msg.pose.pose
        self.core.set_pose(pose.position.x, pose.position.y, quaternion_to_yaw(pose.orientation))

    def _refresh_inputs(self):
        """Convert the newest stored messages for the policy (in the worker thread)."""
        from leo_ros.ros.conversions import ConversionError, image_to_array
        from leo_ros.ros.conversions import scene_objects_to_tokens
        with self._inputs:
            scene, image = self._scene_msg, self._image_msg
        last_scene, last_image = self._converted
        try:
            if scene is not None and scene is not last_scene:
                self.core.set_scene(scene_objects_to_tokens(scene[0]), scene[1])
            if image is not None and image is not last_image:
                self.core.set_image(image_to_array(image))
        except ConversionError as error:
            self.last_error = f'bad input message: {error}'
            self.node.get_logger().warning(self.last_error, throttle_duration_sec=5.0)
        self._converted = (scene, image)

    # --- serving -----------------------------------------------------------------------------
    def _decide(self, instruction, dry_run):
        self._refresh_inputs()
        return self.core.decide(instruction, self._now(), dry_run=dry_run)

    def _count(self, key):
        with self._counts_lock:
            self.counts[key] += 1

    def handle(self, instruction, dry_run=False):
        """Run one instruction through the worker; publish its command; return the Outcome."""
        from leo_ros.agent.core import Outcome
        try:
            self.core.begin()
        except AgentBusy as error:
            self._count('refused_busy')
            return Outcome(False, error=str(error))
        handed_over = False
        try:
            self._count('instructions')
            outcome = self.worker.submit(self._decide, instruction, dry_run).result()
            self._publish_outcome(outcome)
            if outcome.action is not None and outcome.plan:
                # A plan: the rest runs in the background; the agent stays busy until it is
                # done, and leo/stop cancels it.
                threading.Thread(target=self._finish_plan, args=(outcome,), daemon=True,
                                 name='leo_plan').start()
                handed_over = True
            elif outcome.action is not None:
                self._start_action(outcome.action)
            return outcome
        finally:
            if not handed_over:
                self.core.end()

    def _finish_plan(self, outcome):
        try:
            ok, message = self.core.run_plan(
                outcome, self._now, lambda action: self._perform(action, lambda: False))
            if not ok:
                self.last_error = f'plan stopped: {message}'
                self.node.get_logger().warning(self.last_error)
        finally:
            self.core.end()

    def _on_instruct(self, request, response):
        outcome = self.handle(request.instruction, request.dry_run)
        response.success, response.response = outcome.success, outcome.response
        response.error, response.kind = outcome.error, outcome.kind
        return response

    def _on_instruction_topic(self, msg):
        outcome = self.handle(msg.data)
        if not outcome.success:
            from std_msgs.msg import String
            self.pub_response.publish(String(data=f'error: {outcome.error}'))

    def _publish_outcome(self, outcome):
        from std_msgs.msg import String
        from leo_ros.ros.commands import action_tokens
        if not outcome.success:
            self.last_error = outcome.error
            self._count('refused_gate' if 'safety gate' in outcome.error else 'errors')
            self.node.get_logger().warning(outcome.error[:300])
        if outcome.response:
            self.pub_response.publish(String(data=outcome.response))
        if outcome.tokens:
            self.pub_tokens.publish(action_tokens(
                outcome.kind, outcome.tokenizer, outcome.token_ids, outcome.tokens,
                self.config.fixed_frame, self.node.get_clock().now().to_msg()))

    def _start_action(self, action):
        """Publish the command for a gated action (the first command goes out at once)."""
        from leo_ros.ros import commands
        stamp = self.node.get_clock().now().to_msg()
        frame = self.config.fixed_frame
        if isinstance(action, NavGoal):
            goal = commands.nav_goal_to_pose_stamped(action, frame, stamp)
            self.pub_goal.publish(goal)
            if self.nav2 is not None and self.nav2.server_is_ready():
                from nav2_msgs.action import NavigateToPose
                self.nav2.send_goal_async(NavigateToPose.Goal(pose=goal))
        elif isinstance(action, NavStep):
            velocity = self.core.gate.step_velocity(action)
            self.pub_cmd_vel.publish(commands.twist(velocity.linear, velocity.angular))
            if velocity.duration > 0:
                timer = threading.Timer(velocity.duration, self._halt_base)
                timer.daemon = True
                timer.start()
        else:
            self.pub_manipulator.publish(commands.manipulator_command(action, frame, stamp))

    def _halt_base(self):
        from leo_ros.ros.commands import twist
        self.pub_cmd_vel.publish(twist(0.0, 0.0))

    def _on_stop(self, request, response):
        from leo_ros.ros import commands
        self.core.cancel()
        self._halt_base()
        pose = self.core.pose
        if pose is not None:   # a goal at the current pose ends goal following too
            self.pub_goal.publish(commands.nav_goal_to_pose_stamped(
                NavGoal(*pose), self.config.fixed_frame, self.node.get_clock().now().to_msg()))
        self.pub_manipulator.publish(commands.stop_command(self.config.fixed_frame))
        response.success = True
        response.message = 'stopped: task cancelled, zero velocity sent, arm halted'
        return response

    # --- multi-step tasks --------------------------------------------------------------------
    def _on_execute(self, goal_handle):
        from leo_ros.action import ExecuteInstruction
        result = ExecuteInstruction.Result()
        try:
            self.core.begin()
        except AgentBusy as error:
            self._count('refused_busy')
            goal_handle.abort()
            result.success, result.error = False, str(error)
            return result

        def feedback(phase, step, last_action):
            goal_handle.publish_feedback(ExecuteInstruction.Feedback(
                phase=phase, step=step, last_action=last_action))
            if goal_handle.is_cancel_requested:
                self.core.cancel()

        def decide_and_publish(instruction, now, dry_run=False):
            outcome = self.worker.submit(self._decide, instruction, dry_run).result()
            self._publish_outcome(outcome)
            return outcome

        try:
            self._count('instructions')
            outcome, steps = self.core.execute(
                goal_handle.request.instruction, self._now,
                lambda action: self._perform(action, lambda: goal_handle.is_cancel_requested),
                feedback,
                goal_handle.request.max_steps, decide=decide_and_publish)
        finally:
            self.core.end()
        result.success, result.response = outcome.success, outcome.response
        result.error, result.steps = outcome.error, steps
        if goal_handle.is_cancel_requested or outcome.error == 'cancelled':
            goal_handle.canceled()
        elif outcome.success:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        return result

    def _perform(self, action, cancel_requested):
        """
        Execute one gated action and wait until it is done, cancelled or timed out.

        :param cancel_requested: callable, true when the caller wants to stop
        """
        self._start_action(action)
        if isinstance(action, NavGoal):
            deadline = time.monotonic() + self.config.goal_timeout
            while time.monotonic() < deadline:
                if self.core.cancelled or cancel_requested():
                    return False, 'cancelled'
                pose = self.core.pose
                if pose and math.hypot(pose[0] - action.x, pose[1] - action.y) <= \
                        self.config.goal_tolerance:
                    return True, ''
                time.sleep(0.05)
            return False, f'goal not reached in {self.config.goal_timeout:.0f} s'
        wait = (self.core.gate.step_velocity(action).duration if isinstance(action, NavStep)
                else self.options['manipulation_wait'])
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.core.cancelled or cancel_requested():
                return False, 'cancelled'
            time.sleep(0.02)
        return True, ''

    def close(self):
        """Stop the decision worker (the executor is shutting down)."""
        self.worker.shutdown(wait=False, cancel_futures=True)

    # --- diagnostics -------------------------------------------------------------------------
    def _publish_diagnostics(self):
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
        ready = self.core.policy is not None
        if ready:
            level, message = DiagnosticStatus.OK, 'ready'
        elif self.loading:
            level, message = DiagnosticStatus.WARN, 'loading model'
        else:
            level, message = DiagnosticStatus.ERROR, self.core.load_error
        age = self.core.scene_age(self._now())
        latencies = self.core.decisions_ms
        with self._counts_lock:
            counts = dict(self.counts)
        values = {
            'model_ready': str(ready), 'device': self.core.device or 'none',
            'model_path': self.config.model_path or 'default', 'busy': str(self.core.busy),
            'scene_age_s': 'none' if age is None else f'{age:.2f}',
            'decision_ms_p50': f'{statistics.median(latencies):.1f}' if latencies else 'none',
            'dry_run': str(self.config.safety.dry_run), 'last_error': self.last_error[:200],
            **{key: str(value) for key, value in counts.items()}}
        status = DiagnosticStatus(level=level, name='leo_ros: policy_node', message=message,
                                  hardware_id='leo_ros')
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.node.get_clock().now().to_msg()
        self.pub_diagnostics.publish(array)


def main(argv=None) -> int:
    from leo_ros.ros.node_runner import run_node
    return run_node('policy_node', PolicyNode, argv, num_threads=6)


if __name__ == '__main__':
    sys.exit(main())
