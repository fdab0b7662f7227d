"""A client of the running agent and the built-in world, for tools and tests."""

import math
import threading
import time


class AgentClient:
    """A node's view of the running agent and world: calls their services, watches commands."""

    def __init__(self, node):
        from geometry_msgs.msg import PoseStamped, Twist
        from leo_ros.msg import ManipulatorCommand, SceneObjects
        from leo_ros.srv import ResetWorld, TaskStatus
        from nav_msgs.msg import Odometry
        from rclpy.qos import qos_profile_sensor_data
        from std_srvs.srv import Trigger

        from leo_ros.ros.instruct_client import InstructClient

        self.node = node
        self.lock = threading.Lock()
        self.first_command = None
        self.zero_twist_at = None
        self.scene_at = None
        self.scene = None                    # the newest leo/scene_objects message
        self.speed = None
        self.still_at = None
        node.create_subscription(PoseStamped, 'goal_pose', self._on_command, 10)
        node.create_subscription(Twist, 'cmd_vel', self._on_twist, 10)
        node.create_subscription(ManipulatorCommand, 'leo/manipulator_command',
                                 self._on_command, 10)
        node.create_subscription(SceneObjects, 'leo/scene_objects', self._on_scene,
                                 qos_profile_sensor_data)
        node.create_subscription(Odometry, 'odom', self._on_odom, qos_profile_sensor_data)
        from diagnostic_msgs.msg import DiagnosticArray
        self.diagnostics = {}                # status name -> newest DiagnosticStatus
        node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.instruct = InstructClient(node)
        self.reset = node.create_client(ResetWorld, 'sim/reset')
        self.status = node.create_client(TaskStatus, 'sim/task_status')
        self.stop = node.create_client(Trigger, 'leo/stop')
        self.reset_scene = node.create_client(Trigger, 'leo/reset_scene')
        self.cmd_vel = node.create_publisher(Twist, 'cmd_vel', 10)

    def _on_command(self, msg):
        with self.lock:
            if self.first_command is None:
                self.first_command = time.perf_counter()

    def _on_twist(self, msg):
        now = time.perf_counter()
        with self.lock:
            if self.first_command is None and (msg.linear.x or msg.angular.z):
                self.first_command = now
            if not msg.linear.x and not msg.angular.z and self.zero_twist_at is None:
                self.zero_twist_at = now

    def _on_scene(self, msg):
        with self.lock:
            self.scene_at = time.perf_counter()
            self.scene = msg

    def _on_diagnostics(self, msg):
        with self.lock:
            for status in msg.status:
                self.diagnostics[status.name] = status

    def _on_odom(self, msg):
        now = time.perf_counter()
        speed = abs(msg.twist.twist.linear.x) + abs(msg.twist.twist.angular.z)
        with self.lock:
            self.speed = speed
            if speed < 1e-3 and self.still_at is None:
                self.still_at = now

    def call(self, client, request, timeout=30.0):
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f'{client.srv_name} not available')
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done():
            if time.monotonic() > deadline:
                raise TimeoutError(f'{client.srv_name} did not answer')
            time.sleep(0.002)
        return future.result()

    def wait_fresh_scene(self, since, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.scene_at is not None and self.scene_at > since:
                    return True
            time.sleep(0.01)
        return False

    def reset_world(self, seed, family='', task_seed=0, look_around=False, timeout=30.0):
        """
        Reset the world to a scene (and task), clear perception's memory, wait for a new scene.

        :param look_around: turn the robot once on the spot so the scene memory covers the room
        :return: the sim/reset response
        """
        from leo_ros.srv import ResetWorld
        from std_srvs.srv import Trigger
        reply = self.call(self.reset, ResetWorld.Request(seed=seed, task_family=family,
                                                         task_seed=task_seed), timeout)
        if not reply.success:
            return reply
        time.sleep(0.3)                      # frames of the old scene still in flight
        if self.reset_scene.wait_for_service(timeout_sec=5.0):
            self.call(self.reset_scene, Trigger.Request(), timeout)
        since = time.perf_counter()
        if not self.wait_fresh_scene(since, timeout):
            raise TimeoutError('no scene arrived after the reset')
        if look_around:
            self.turn_once()
        return reply

    def turn_once(self, rate=0.8):
        """Turn the robot a full revolution on the spot at ``rate`` rad/s, then stop."""
        from leo_ros.ros.commands import twist
        end = time.monotonic() + 2.0 * math.pi / rate
        while time.monotonic() < end:
            self.cmd_vel.publish(twist(0.0, rate))
            time.sleep(0.1)
        self.cmd_vel.publish(twist(0.0, 0.0))
        time.sleep(0.5)                      # the last views reach the scene memory
