"""
policy_node: the LEO agent on ROS 2, a managed (lifecycle) node.

Keeps the newest scene objects and ego-view image, looks its own pose up through TF
(``fixed_frame`` -> ``base_frame``); serves instructions through ``leo/instruct`` (Instruct),
``leo/execute`` (ExecuteInstruction) and ``leo/instruction`` (std_msgs/String); publishes text
on ``leo/response``, action tokens on ``leo/action_tokens`` and gated commands on the motion
outputs (leo_ros.ros.motion: Nav2's NavigateToPose or ``goal_pose``, ``cmd_vel``, the
manipulator topics and the gripper action); ``leo/stop`` (std_srvs/Trigger) cancels the running
task and halts every output at once.

Lifecycle: configure loads the model in the background (the node serves, and says on
``/diagnostics`` that it is loading, or why loading failed); activate lets instructions move the
robot; deactivate stops all motion; cleanup drops the model. Decisions run in a worker thread,
one instruction at a time: a second one gets a clear busy answer. Safety parameters change live
(a set-callback checks them and swaps the gate's config in one assignment).
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
import math
import statistics
import sys
import threading
import time

from leo_ros.actions.types import NavGoal, NavStep
from leo_ros.agent.core import AgentBusy, AgentConfig, AgentCore, Cancelled, Outcome
from leo_ros.agent.grounding import GroundingConfig
from leo_ros.agent.safety import SafetyConfig
from leo_ros.nodes.policy_parameters import (AGENT_PARAMETERS, ALL_PARAMETERS,
                                             GROUNDING_PARAMETERS, NODE_PARAMETERS,
                                             SAFETY_PARAMETERS)

__all__ = ['AGENT_PARAMETERS', 'NODE_PARAMETERS', 'SAFETY_PARAMETERS', 'PolicyNode', 'main']


def load_policy(model_path, device, dtype):
    """
    Load a policy directory (the default shipped model when ``model_path`` is empty).

    'auto' device is cuda when available; 'auto' dtype is bfloat16 on a GPU, else the dtype the
    checkpoint was trained in (``leo_ros.model.loading.resolve_device``).
    """
    from leo_ros.model.loading import load_policy as load_any
    return load_any(model_path or None, device=device, dtype=dtype)


class PolicyNode:
    """
    ROS adapter around :class:`AgentCore`; holds no model math.

    :param node: an rclpy LifecycleNode; it serves at once, and moves the robot once its
        lifecycle manager has configured and activated it (leo_ros.ros.node_runner)
    :param load: ``load(model_path, device, dtype)`` -> the policy
    """

    def __init__(self, node, load=load_policy):
        from diagnostic_msgs.msg import DiagnosticArray
        from leo_ros.action import ExecuteInstruction
        from leo_ros.msg import ActionTokens, SceneObjects
        from leo_ros.ros.motion import MotionOutputs
        from leo_ros.ros.parameters import declare, warn_undeclared
        from leo_ros.ros.tf import Transforms
        from leo_ros.srv import Instruct
        from rclpy.action import ActionServer, CancelResponse
        from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image
        from std_msgs.msg import String
        from std_srvs.srv import Trigger

        self.node = node
        values = declare(node, ALL_PARAMETERS)
        if values['torch_threads'] > 0:
            import torch
            torch.set_num_threads(values['torch_threads'])
        safety = SafetyConfig(**{name: values[name] for name in SAFETY_PARAMETERS})
        grounding = GroundingConfig(**{name: values[name] for name in GROUNDING_PARAMETERS})
        self.config = AgentConfig(safety=safety, grounding=grounding,
                                  **{name: values[name] for name in AGENT_PARAMETERS})
        self.options = {name: values[name] for name in NODE_PARAMETERS}
        self.core = AgentCore(self.config, load)
        self.lifecycle = 'unconfigured'    # unconfigured, inactive, active (rclpy.lifecycle)
        self.loading = False
        self.counts = {'instructions': 0, 'refused_busy': 0, 'refused_gate': 0, 'refusals': 0,
                       'motion_suppressed': 0, 'errors': 0}
        self._counts_lock = threading.Lock()  # services, plans and the timer run on other threads
        self.last_error = ''
        self.pose_status = 'not looked up yet'
        self.scene_problem = ''
        self._inputs = threading.Lock()
        self._scene_msg = self._image_msg = None
        self._converted = (None, None)
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix='leo_decide')

        from leo_ros.ros.qos import serving_qos
        from leo_ros.ros.validation import RefusalCounter
        self.refused = RefusalCounter()       # refused inputs by reason (diagnostics)
        self._reset_stamp = None               # leo/world_reset: scenes before it are old
        self._goal_claimed_at = None           # leo/execute: the agent claimed for a goal
        # Callback groups (docs/agent.md): inputs store only; serving is reentrant, so every
        # call is answered at once (a result or busy) while one instruction runs; stop has
        # its own group. Deep service QoS: a burst of calls is never dropped.
        inputs = MutuallyExclusiveCallbackGroup()
        serving = ReentrantCallbackGroup()
        stopping = MutuallyExclusiveCallbackGroup()
        self.tf = Transforms(node, callback_group=ReentrantCallbackGroup())
        node.create_subscription(SceneObjects, 'leo/scene_objects', self._on_scene,
                                 qos_profile_sensor_data, callback_group=inputs)
        node.create_subscription(Image, 'camera/image', self._on_image,
                                 qos_profile_sensor_data, callback_group=inputs)
        node.create_subscription(String, 'leo/instruction', self._on_instruction_topic, 10,
                                 callback_group=serving)
        node.create_service(Instruct, 'leo/instruct', self._on_instruct,
                            qos_profile=serving_qos(), callback_group=serving)
        node.create_service(Trigger, 'leo/stop', self._on_stop, qos_profile=serving_qos(),
                            callback_group=stopping)
        self.execute_server = ActionServer(
            node, ExecuteInstruction, 'leo/execute', self._on_execute,
            goal_callback=self._on_goal_request,
            cancel_callback=lambda _: CancelResponse.ACCEPT, callback_group=serving,
            goal_service_qos_profile=serving_qos(), result_service_qos_profile=serving_qos(),
            cancel_service_qos_profile=serving_qos())
        self._subscribe_world(inputs)
        self.pub_response = node.create_publisher(String, 'leo/response', 10)
        self.pub_tokens = node.create_publisher(ActionTokens, 'leo/action_tokens', 10)
        self.motion = MotionOutputs(node, self.options, callback_group=serving)
        self.pub_diagnostics = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        node.create_timer(self.options['diagnostics_period'], self._publish_diagnostics,
                          callback_group=inputs)
        node.add_on_set_parameters_callback(self._on_set_parameters)
        warn_undeclared(node, ALL_PARAMETERS)

    # --- lifecycle (rclpy.lifecycle; leo_ros.ros.node_runner wires these) --------------------
    def configure(self):
        """Start loading the model in the background; the node serves while it loads."""
        if self.core.policy is None and not self.loading:
            self.loading = True
            threading.Thread(target=self._load, name='leo_load', daemon=True).start()
        self.lifecycle = 'inactive'
        return True

    def activate(self):
        """Let instructions move the robot."""
        self.lifecycle = 'active'
        return True

    def deactivate(self):
        """Cancel the running task and stop every motion output."""
        self.lifecycle = 'inactive'
        self.halt('stopped: policy_node deactivated')
        return True

    def cleanup(self):
        """Drop the model (configure loads it again)."""
        self.core.policy = None
        self.core.load_error = 'model released (lifecycle cleanup)'
        self.lifecycle = 'unconfigured'
        return True

    def shutdown(self):
        self.halt('stopped: policy_node shutting down')
        self.lifecycle = 'finalized'
        return True

    def _load(self):
        start = time.perf_counter()
        ok = self.core.load()
        self.loading = False
        if ok:
            device, dtype = self.core.device, self.core.dtype
            self.node.get_logger().info(f'model ready on {device} ({dtype}) in '
                                        f'{time.perf_counter() - start:.1f} s')
        else:
            self.last_error = self.core.load_error
            self.node.get_logger().error(self.core.load_error)

    # --- parameters ----------------------------------------------------------------------
    def _on_set_parameters(self, parameters):
        """Check a live change; apply it to the gate in one assignment or reject it."""
        from leo_ros.ros.parameters import live_update

        def build(changes):
            safety = replace(self.config.safety, **{k: v for k, v in changes.items()
                                                    if k in SAFETY_PARAMETERS})
            grounding = replace(self.config.grounding, **{k: v for k, v in changes.items()
                                                          if k in GROUNDING_PARAMETERS})
            config = replace(self.config, safety=safety, grounding=grounding, **{
                k: v for k, v in changes.items() if k in AGENT_PARAMETERS})
            return config, {k: v for k, v in changes.items() if k in NODE_PARAMETERS}

        result, built = live_update(ALL_PARAMETERS, parameters, build)
        if built is not None:
            config, options = built
            self.config = self.core.config = config
            self.core.gate.config = config.safety      # the gate reads this once per check
            self.core.grounding.config = config.grounding
            self.options.update(options)
            self.node.get_logger().info(
                'parameters changed: ' + ', '.join(f'{p.name}={p.value!r}' for p in parameters))
        return result

    # --- inputs: store only ------------------------------------------------------------------
    def _now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def _on_scene(self, msg):
        """Validate and store a scene (refused ones are counted by reason, never used)."""
        from leo_ros.ros.conversions import stamp_to_seconds
        from leo_ros.ros.validation import InputRefused, scene_message_to_tokens
        received = self._now()
        reset = self._reset_stamp
        if reset is not None and stamp_to_seconds(msg.header.stamp) < reset:
            self.refused.add('scene_before_reset', 'scene stamped before the world reset')
            return
        try:
            tokens = scene_message_to_tokens(msg)
        except InputRefused as error:
            self._refuse_input(error.reason, str(error))
            return
        with self._inputs:
            self._scene_msg = (tokens, received)

    def _on_image(self, msg):
        """Store an image whose header says it can be an ego view; count the others."""
        from leo_ros.ros.image_encodings import check_image_header, ImageRefused
        try:
            check_image_header(msg)
        except ImageRefused as error:
            self._refuse_input(error.reason, str(error))
            return
        with self._inputs:
            self._image_msg = msg

    def _refuse_input(self, reason, message):
        self.refused.add(reason, message)
        self.node.get_logger().warning(message[:300], throttle_duration_sec=5.0)

    def _subscribe_world(self, group):
        """Subscribe the map (bounds, occupancy) and world resets (forget the scene)."""
        from leo_ros.ros.qos import latched_qos
        from nav_msgs.msg import OccupancyGrid
        from std_msgs.msg import Header
        latched = latched_qos()
        self.map_status = 'none: map_* parameters'
        self.node.create_subscription(OccupancyGrid, 'map', self._on_map, latched,
                                      callback_group=group)
        self.node.create_subscription(Header, 'leo/world_reset', self._on_world_reset,
                                      latched, callback_group=group)

    def _on_map(self, msg):
        from leo_ros.ros.maps import map_from_occupancy_grid
        from leo_ros.ros.validation import InputRefused
        frame = msg.header.frame_id or self.config.fixed_frame
        if frame != self.config.fixed_frame:
            self._refuse_input('map_frame', f'map refused: frame {frame!r} is not '
                               f'{self.config.fixed_frame!r}')
            return
        try:
            grid = map_from_occupancy_grid(msg)
        except InputRefused as error:
            self._refuse_input(error.reason, str(error))
            return
        self.core.set_map(grid)
        min_x, max_x, min_y, max_y = grid.bounds()
        self.map_status = (f'{grid.shape[1]}x{grid.shape[0]} cells at {grid.resolution:.2f} m, '
                           f'x {min_x:.2f}..{max_x:.2f}, y {min_y:.2f}..{max_y:.2f}')

    def _on_world_reset(self, msg):
        """Forget the scene of a world that was reset; scenes stamped before it are old."""
        from leo_ros.ros.conversions import stamp_to_seconds
        self._reset_stamp = stamp_to_seconds(msg.stamp)
        with self._inputs:
            self._scene_msg = None
        self.core.clear_scene()

    def _lookup_pose(self, timeout=0.0):
        """Return (x, y, yaw) of base_frame in fixed_frame through TF, or None (and why)."""
        from leo_ros.ros.tf import planar_pose, TransformUnavailable
        fixed, base = self.config.fixed_frame, self.options['base_frame']
        try:
            pose = planar_pose(self.tf.lookup(fixed, base, timeout))
        except TransformUnavailable as error:
            self.pose_status = f'no transform {fixed} -> {base}: {error}'
            return None
        self.pose_status = 'ok'
        self.core.set_pose(*pose)
        return pose

    def _scene_in_fixed_frame(self, tokens):
        """Return the scene in fixed_frame (transformed through TF) or raise ValueError."""
        from leo_ros.ros.tf import transform_scene_tokens, TransformUnavailable
        fixed = self.config.fixed_frame
        if tokens.frame_id == fixed:
            return tokens
        if not tokens.frame_id:
            raise ValueError(f'the scene has no frame_id (expected {fixed!r})')
        try:
            matrix = self.tf.lookup(fixed, tokens.frame_id, self.options['tf_timeout'])
        except TransformUnavailable as error:
            raise ValueError(f'the scene is in {tokens.frame_id!r}, not {fixed!r}, and TF '
                             f'cannot transform it: {error}') from error
        return transform_scene_tokens(tokens, matrix, fixed)

    def _refresh_inputs(self):
        """Convert the newest stored messages for the policy (in the worker thread)."""
        from leo_ros.ros.conversions import ConversionError
        from leo_ros.ros.image_encodings import image_to_rgb, ImageRefused
        with self._inputs:
            scene, image = self._scene_msg, self._image_msg
        last_scene, last_image = self._converted
        try:
            if scene is not None and scene is not last_scene:
                try:
                    tokens = self._scene_in_fixed_frame(scene[0])   # validated in _on_scene
                    self.core.set_scene(tokens, scene[1])
                    self.scene_problem = ''
                except ConversionError:
                    raise                           # a bad message, not a bad scene: below
                except ValueError as error:
                    self.scene_problem = f'scene refused: {error}'
            if image is not None and image is not last_image:
                try:
                    self.core.set_image(image_to_rgb(image))
                except ImageRefused as refused:      # keep the last good image
                    self._refuse_input(refused.reason, str(refused))
        except ConversionError as error:
            self.last_error = f'bad input message: {error}'
            self.node.get_logger().warning(self.last_error, throttle_duration_sec=5.0)
        self._converted = (scene, image)

    # --- serving -----------------------------------------------------------------------------
    def _decide(self, instruction, dry_run):
        """Refuse on the node's own inputs (an unusable scene, no pose); else the core decides."""
        from leo_ros.agent.instructions import clean_instruction, InstructionError
        self._refresh_inputs()
        # A bad instruction, a model not ready and no scene: the core says what is wrong.
        try:
            clean_instruction(instruction)
            checked = self.core.policy is not None
        except InstructionError:
            checked = False
        if checked and self.scene_problem:
            return Outcome(False, error=self.scene_problem)
        if checked and self.core.scene_age(self._now()) is not None and \
                self._lookup_pose(self.options['tf_timeout']) is None:
            return Outcome(False, error=f'not ready: {self.pose_status}')
        return self.core.decide(instruction, self._now(), dry_run=dry_run)

    def _count(self, key):
        with self._counts_lock:
            self.counts[key] += 1

    def _inactive_error(self):
        if self.lifecycle == 'active':
            return ''
        return (f'not active: policy_node is {self.lifecycle} (lifecycle); leo-agent or the '
                f'launch file activates it, or call policy_node/change_state')

    def handle(self, instruction, dry_run=False):
        """Run one instruction through the worker; publish its command; return the Outcome."""
        inactive = self._inactive_error()
        if inactive:
            return Outcome(False, error=inactive)
        try:
            self.core.begin()
        except AgentBusy as error:
            self._count('refused_busy')
            return Outcome(False, error=str(error))
        handed_over = False
        try:
            self._count('instructions')
            self.motion.cancel_navigation()       # a new instruction replaces the old goal
            outcome = self.worker.submit(self._decide, instruction, dry_run).result()
            self._publish_outcome(outcome)
            if outcome.action is not None and outcome.plan:
                # A plan: the rest runs in the background; the agent stays busy until it is
                # done, and leo/stop cancels it.
                threading.Thread(target=self._finish_plan, args=(outcome,), daemon=True,
                                 name='leo_plan').start()
                handed_over = True
            elif outcome.action is not None:
                error = self._start_one_shot(outcome.action)
                if error:
                    outcome = replace(outcome, success=False, error=error)
                    self._publish_outcome(replace(outcome, response='', tokens=[]))
            return outcome
        finally:
            if not handed_over:
                self.core.end()

    def _start_one_shot(self, action):
        """Send a single gated action; return '' or why it could not go out."""
        from leo_ros.ros.nav2_client import GoalError
        try:
            handle = self._start_action(action)
        except (GoalError, Cancelled) as error:
            return str(error)
        if handle is not None:     # Nav2: follow the goal to its end in the background
            threading.Thread(target=self._follow_nav2, args=(handle,), daemon=True,
                             name='leo_nav2').start()
        return ''

    def _follow_nav2(self, handle):
        status, result = self.motion.nav2.wait(handle, self.config.goal_timeout)
        if status not in ('succeeded', 'canceled'):
            self.last_error = f'navigation {status}: {getattr(result, "error_msg", "")}'
            self.node.get_logger().warning(self.last_error)

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
        if outcome.note:                        # a question's decoded motion was dropped
            self._count('motion_suppressed')
            self.node.get_logger().info(outcome.note[:300])
        if not outcome.success:
            self.last_error = outcome.error
            self._count('refused_gate' if 'safety gate' in outcome.error else 'refusals'
                        if outcome.kind == 'refusal' else 'errors')
            self.node.get_logger().warning(outcome.error[:300])
        if outcome.response:
            self.pub_response.publish(String(data=outcome.response))
        if outcome.tokens:
            self.pub_tokens.publish(action_tokens(
                outcome.kind, outcome.tokenizer, outcome.token_ids, outcome.tokens,
                self.config.fixed_frame, self.node.get_clock().now().to_msg()))

    def _start_action(self, action, on_feedback=None):
        """
        Send the command for a gated action (the first command goes out at once).

        :return: the Nav2 goal handle for a NavGoal sent to Nav2, else None
        :raises GoalError: Nav2 is needed but absent, or rejected the goal
        """
        with self.core.motion() as allowed:     # a stop cannot slip between check and send
            if not allowed:
                raise Cancelled(self.core.cancel_reason or 'cancelled')
            return self._send_action(action, on_feedback)

    def _send_action(self, action, on_feedback):
        """Send an action on the outputs its registry entry names (``command``)."""
        from leo_ros.actions.registry import kind_of
        return getattr(self, f'_send_{kind_of(action).command}')(action, on_feedback)

    def _send_navigate(self, action, on_feedback):
        from leo_ros.ros.commands import nav_goal_to_pose_stamped
        goal = nav_goal_to_pose_stamped(action, self.config.fixed_frame,
                                        self.node.get_clock().now().to_msg())
        _, handle = self.motion.navigate(goal, self.options['nav2_timeout'], on_feedback)
        return handle

    def _send_step(self, action, on_feedback):
        velocity = self.core.gate.step_velocity(action)
        self.motion.step(velocity)
        if velocity.duration > 0:
            timer = threading.Timer(velocity.duration, self._halt_base)
            timer.daemon = True
            timer.start()

    def _send_manipulate(self, action, on_feedback):
        note = self.motion.manipulate(action, self.config.fixed_frame,
                                      self.options['base_frame'],
                                      self.node.get_clock().now().to_msg(),
                                      self.options['nav2_timeout'])
        if note:
            self.last_error = note
            self.node.get_logger().warning(note)

    def _halt_base(self):
        from leo_ros.ros.commands import twist
        self.motion.pub_cmd_vel.publish(twist(0.0, 0.0))

    def halt(self, reason='stopped by /leo/stop'):
        """Cancel the running task and stop every motion output (leo/stop, deactivate)."""
        from leo_ros.ros.commands import pose_stamped

        def stop_outputs():
            stamp = self.node.get_clock().now().to_msg()
            pose = self._lookup_pose(0.0)
            here = None if pose is None else pose_stamped(
                *pose, frame_id=self.config.fixed_frame, stamp=stamp)
            self.motion.halt(self.config.fixed_frame, self.options['base_frame'], stamp, here)
        # Under the motion lock: no command of the cancelled task can follow these.
        return self.core.stop(stop_outputs, reason)

    def _on_stop(self, request, response):
        running = self.halt()
        response.success = True
        response.message = ('stopped: the running task cancelled' if running else
                            'stopped: no task was running') + \
            '; zero velocity sent, navigation goal cancelled, arm halted'
        return response

    # --- multi-step tasks --------------------------------------------------------------------
    def _on_goal_request(self, goal):
        """Accept a goal only when the agent is free, claiming it; reject the rest at once."""
        from rclpy.action import GoalResponse
        if self._inactive_error():
            return GoalResponse.ACCEPT              # _on_execute aborts it with the reason
        try:
            self.core.begin()
        except AgentBusy:
            self._count('refused_busy')
            return GoalResponse.REJECT
        self._goal_claimed_at = time.monotonic()
        return GoalResponse.ACCEPT

    def _take_goal_claim(self) -> bool:
        claimed, self._goal_claimed_at = self._goal_claimed_at is not None, None
        return claimed

    def _release_stale_claim(self, limit=10.0):
        """Release a goal claim whose goal never started executing (the client vanished)."""
        claimed = self._goal_claimed_at
        if claimed is not None and time.monotonic() - claimed > limit:
            self._goal_claimed_at = None
            self.core.end()
            self.node.get_logger().warning('released the agent: an accepted goal never '
                                           'started executing')

    def _on_execute(self, goal_handle):
        from leo_ros.action import ExecuteInstruction
        result = ExecuteInstruction.Result()
        claimed = self._take_goal_claim()
        inactive = self._inactive_error()
        if inactive:
            if claimed:
                self.core.end()
            goal_handle.abort()
            result.success, result.error = False, inactive
            return result
        try:
            if not claimed:
                self.core.begin()
        except AgentBusy as error:
            self._count('refused_busy')
            goal_handle.abort()
            result.success, result.error = False, str(error)
            return result
        last = {'step': 0, 'action': ''}

        def feedback(phase, step, last_action, distance=-1.0):
            last['step'], last['action'] = step, last_action
            goal_handle.publish_feedback(ExecuteInstruction.Feedback(
                phase=phase, step=step, last_action=last_action,
                distance_remaining=float(distance)))
            if goal_handle.is_cancel_requested:
                self.core.cancel('cancelled by the client')

        def progress(distance):
            feedback('waiting', last['step'], last['action'], distance)

        def decide_and_publish(instruction, now, dry_run=False):
            outcome = self.worker.submit(self._decide, instruction, dry_run).result()
            self._publish_outcome(outcome)
            return outcome

        try:
            self._count('instructions')
            self.motion.cancel_navigation()
            outcome, steps = self.core.execute(
                goal_handle.request.instruction, self._now,
                lambda action: self._perform(action, lambda: goal_handle.is_cancel_requested,
                                             progress),
                feedback, goal_handle.request.max_steps, decide=decide_and_publish)
        except BaseException:
            self.core.end()
            raise
        stopped, reason = self.core.finish()      # atomic with leo/stop
        cancelled = stopped or (not outcome.success and goal_handle.is_cancel_requested)
        reason = reason or 'cancelled by the client'
        result.success, result.response = outcome.success, outcome.response
        result.error, result.steps = outcome.error, steps
        if cancelled:
            from leo_ros.ros.goals import end_canceled
            result.success, result.error = False, reason
            problem = end_canceled(goal_handle)
            if problem:
                self.node.get_logger().warning(f'leo/execute: {problem}')
        elif outcome.success:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        return result

    def _perform(self, action, cancel_requested, progress=None):
        """
        Execute one gated action and wait until it is done, cancelled or timed out.

        :param cancel_requested: callable, true when the caller wants to stop
        :param progress: callable ``(distance_remaining)`` while navigating
        :return: (ok, message)
        """
        from leo_ros.ros.nav2_client import GoalError
        stop = lambda: self.core.cancelled or cancel_requested()  # noqa: E731
        if isinstance(action, NavGoal):
            report = (lambda fb: progress(fb.distance_remaining)) if progress else None
            try:
                handle = self._start_action(action, report)
            except (GoalError, Cancelled) as error:
                return False, str(error)
            if handle is not None:
                return self._wait_nav2(handle, stop)
            return self._wait_goal_pose(action, stop, progress)
        try:
            self._start_action(action)
        except Cancelled as error:
            return False, str(error)
        wait = (self.core.gate.step_velocity(action).duration if isinstance(action, NavStep)
                else self.options['manipulation_wait'])
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if stop():
                return False, 'cancelled'
            time.sleep(0.02)
        return True, ''

    def _wait_nav2(self, handle, stop):
        status, result = self.motion.nav2.wait(handle, self.config.goal_timeout, stop)
        if status == 'succeeded':
            return True, ''
        if status == 'canceled':
            return False, 'cancelled'
        if status == 'timeout':
            return False, f'goal not reached in {self.config.goal_timeout:.0f} s'
        detail = f': {result.error_msg} (error {result.error_code})' if result else ''
        return False, f'Nav2 navigation {status}{detail}'

    def _wait_goal_pose(self, action, stop, progress):
        """Wait until TF puts the base within goal_tolerance of the goal (fixed frame)."""
        deadline = time.monotonic() + self.config.goal_timeout
        next_report = 0.0
        while time.monotonic() < deadline:
            if stop():
                return False, 'cancelled'
            pose = self._lookup_pose(0.0)
            if pose is not None:
                distance = math.hypot(pose[0] - action.x, pose[1] - action.y)
                if distance <= self.config.goal_tolerance:
                    return True, ''
                if progress and time.monotonic() >= next_report:
                    progress(distance)
                    next_report = time.monotonic() + 0.5
            time.sleep(0.05)
        return False, f'goal not reached in {self.config.goal_timeout:.0f} s'

    def close(self):
        """Stop the decision worker (the executor is shutting down)."""
        self.worker.shutdown(wait=False, cancel_futures=True)

    # --- diagnostics -------------------------------------------------------------------------
    def _status(self):
        from diagnostic_msgs.msg import DiagnosticStatus
        if self.core.policy is None:
            if self.loading:
                return DiagnosticStatus.WARN, 'loading model'
            if self.lifecycle == 'unconfigured':
                return DiagnosticStatus.WARN, 'unconfigured (lifecycle): no model loaded'
            return DiagnosticStatus.ERROR, self.core.load_error
        if self.lifecycle != 'active':
            return DiagnosticStatus.WARN, f'{self.lifecycle} (lifecycle): no motion'
        if self.pose_status not in ('ok', 'not looked up yet'):
            return DiagnosticStatus.WARN, f'not ready: {self.pose_status}'[:200]
        return DiagnosticStatus.OK, 'ready'

    def _publish_diagnostics(self):
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
        if self.pose_status == 'not looked up yet' or self.core.pose is None:
            self._lookup_pose(0.0)
        self._release_stale_claim()
        level, message = self._status()
        with self._inputs:
            received = self._scene_msg[1] if self._scene_msg is not None else None
        age = None if received is None else self._now() - received   # live: last received
        latencies = self.core.decisions_ms
        with self._counts_lock:
            counts = dict(self.counts)
        values = {
            'model_ready': str(self.core.policy is not None), 'device': self.core.device or 'none',
            'dtype': self.core.dtype or 'none',
            'model_path': self.config.model_path or 'default', 'busy': str(self.core.busy),
            'lifecycle': self.lifecycle, 'transform': self.pose_status[:200],
            'tf': self.tf.backend, 'navigation': self.options['navigation'],
            'scene_age_s': 'none' if age is None else f'{age:.2f}',
            'scene_problem': self.scene_problem[:200],
            'decision_ms_p50': f'{statistics.median(latencies):.1f}' if latencies else 'none',
            'dry_run': str(self.config.safety.dry_run), 'last_error': self.last_error[:200],
            'outputs_off': '; '.join(self.motion.notes)[:200], 'map': self.map_status,
            'refused_inputs': str(self.refused.total()),
            **{f'refused_{key}': str(value) for key, value in self.refused.counts().items()},
            **{key: str(value) for key, value in counts.items()}}
        status = DiagnosticStatus(level=level, name='leo_ros: policy_node', message=message,
                                  hardware_id='leo_ros')
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.node.get_clock().now().to_msg()
        self.pub_diagnostics.publish(array)


def main(argv=None, load=load_policy) -> int:
    """
    Run policy_node as a lifecycle node.

    :param load: ``load(model_path, device, dtype)`` of the policy (stand-ins in tests)
    """
    from leo_ros.ros.node_runner import run_node
    return run_node('policy_node', lambda node: PolicyNode(node, load=load), argv,
                    num_threads=6, lifecycle=True)


if __name__ == '__main__':
    sys.exit(main())
