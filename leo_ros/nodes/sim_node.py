"""
sim_node: the built-in world live on ROS 2 topics.

Publishes the robot's RGB-D camera (``camera/image``, ``camera/depth``, ``camera/camera_info``,
``camera/points`` with a per-point ``instance`` field, ``camera/pose``), ``odom``,
``robot_pose``, ``/tf`` and ``/tf_static`` (map -> odom -> base_link -> camera_link ->
camera_optical_frame, REP-105; odom is offset from the map by ``odom_x/y/yaw``) and, with
``publish_clock``, ``/clock``; follows ``goal_pose`` (in the map or odom frame), ``cmd_vel``
and ``leo/manipulator_command``; offers ``sim/reset`` (leo_ros/srv/ResetWorld) and
``sim/task_status`` (leo_ros/srv/TaskStatus); reports refusals on ``sim/status``. The world is
stepped and rendered in a worker thread and published from a second one (the next frame renders
while the last one is sent); callbacks only enqueue.
"""

from collections import deque
from dataclasses import dataclass
import json
import math
import sys
import threading
import time

from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped, Twist
from leo_ros.actions.types import EEDelta
from leo_ros.msg import ManipulatorCommand
from leo_ros.ros.conversions import (matrix_to_pose, pose_stamped, quaternion_to_yaw,
                                     rendered_frame_messages)
from leo_ros.ros.env import apply_ros_environment
from leo_ros.ros.parameters import Spec
from leo_ros.ros.qos import latched_qos
from leo_ros.ros.tf import planar_pose
from leo_ros.sim.geometry import pose_matrix
from leo_ros.sim.render import CameraConfig
from leo_ros.sim.sensor import SensorConfig
from leo_ros.sim.world import camera_mount, World, WorldConfig
from leo_ros.srv import ResetWorld, SaveTopdown, TaskStatus
from nav_msgs.msg import Odometry
import numpy as np
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import String


@dataclass
class SimNodeConfig:
    """
    The node's settings (ROS parameters of the same names).

    :param rate: frames and world steps per second [Hz]
    :param seed: scene seed at start
    :param task_family: task drawn at start ('' for none)
    :param width: image width [px]
    :param height: image height [px]
    :param fov_x: horizontal field of view [deg]
    :param depth_noise: depth noise std at 1 m [m]
    :param dropout: share of pixels without depth
    :param sensor_model: depth through the Kinect/RealSense-like model of leo_ros.sim.sensor
        (noise and quantisation growing with depth squared, missing returns at depth edges and
        on dark or shiny surfaces, per-frame jitter)
    :param publish_points: publish camera/points (the largest message)
    :param publish_clock: publish /clock with simulated time and stamp with it
    :param map_frame: fixed frame of poses and goals
    :param odom_frame: odometry frame
    :param base_frame: robot base frame
    :param camera_link_frame: camera body frame (x forward, z up; REP-103)
    :param camera_frame: camera optical frame (z forward, x right, y down)
    :param odom_x: x of the odom frame's origin in the map [m] (map != odom when non-zero)
    :param odom_y: y of the odom frame's origin in the map [m]
    :param odom_yaw: heading of the odom frame in the map [rad]
    :param publish_tf: publish /tf and /tf_static (map -> odom -> base_link -> camera_link ->
        camera_optical_frame)
    """

    rate: float = 10.0
    seed: int = 0
    task_family: str = ''
    width: int = 640
    height: int = 480
    fov_x: float = 69.0
    depth_noise: float = 0.0
    dropout: float = 0.0
    sensor_model: bool = False
    publish_points: bool = True
    publish_clock: bool = False
    map_frame: str = 'map'
    odom_frame: str = 'odom'
    base_frame: str = 'base_link'
    camera_link_frame: str = 'camera_link'
    camera_frame: str = 'camera_optical_frame'
    odom_x: float = 0.0
    odom_y: float = 0.0
    odom_yaw: float = 0.0
    publish_tf: bool = True

    def __post_init__(self):
        if not 0.1 <= self.rate <= 200.0:
            raise ValueError(f'SimNodeConfig.rate must be in [0.1, 200] Hz, got {self.rate}')
        frames = ('map_frame', 'odom_frame', 'base_frame', 'camera_link_frame', 'camera_frame')
        for name in frames:
            if not getattr(self, name):
                raise ValueError(f'SimNodeConfig.{name} must not be empty')
        if len({getattr(self, name) for name in frames}) != len(frames):
            raise ValueError(f'SimNodeConfig frames must differ, got '
                             f'{[getattr(self, name) for name in frames]}')
        for name in ('odom_x', 'odom_y', 'odom_yaw'):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f'SimNodeConfig.{name} must be finite, got '
                                 f'{getattr(self, name)}')
        # Camera values are checked by CameraConfig.
        self.camera()

    def camera(self) -> CameraConfig:
        """Return the camera configuration."""
        return CameraConfig(width=self.width, height=self.height, fov_x=self.fov_x,
                            depth_noise=self.depth_noise, dropout=self.dropout,
                            sensor=SensorConfig(enabled=self.sensor_model))


#: ROS parameter -> Spec (defaults from SimNodeConfig); all read-only (they shape the world)
SIM_PARAMETERS = {name: Spec(getattr(SimNodeConfig, name), description, *limits,
                             read_only=True)
                  for name, (description, limits) in {
    'rate': ('frames and world steps per second [Hz]', (0.1, 200.0)),
    'seed': ('scene seed at start', (0, 2 ** 31 - 1)),
    'task_family': ('task drawn at start: nav, pick_place, plan, qa, ... ("" for none)', ()),
    'width': ('camera image width [px]', (16, 4096)),
    'height': ('camera image height [px]', (16, 4096)),
    'fov_x': ('horizontal field of view [deg]', (10.0, 170.0)),
    'depth_noise': ('depth noise std at 1 m [m], grows with depth squared', (0.0, 1.0)),
    'dropout': ('share of pixels without depth', (0.0, 1.0)),
    'sensor_model': ('depth like a Kinect/RealSense: noise, quantisation, missing returns at '
                     'edges and on dark or shiny surfaces, per-frame jitter', ()),
    'publish_points': ('publish camera/points (organized PointCloud2 with instance ids)', ()),
    'publish_clock': ('publish /clock with simulated time and stamp messages with it', ()),
    'map_frame': ('fixed frame of poses and goals', ()),
    'odom_frame': ('odometry frame', ()),
    'base_frame': ('robot base frame', ()),
    'camera_link_frame': ('camera body frame (x forward, z up)', ()),
    'camera_frame': ('camera optical frame (z forward, x right, y down)', ()),
    'odom_x': ("x of the odom frame's origin in the map [m]; non-zero: map != odom",
               (-1000.0, 1000.0)),
    'odom_y': ("y of the odom frame's origin in the map [m]", (-1000.0, 1000.0)),
    'odom_yaw': ('heading of the odom frame in the map [rad]', (-math.pi, math.pi)),
    'publish_tf': ('publish /tf and /tf_static: map -> odom -> base_link -> camera_link -> '
                   'camera_optical_frame', ()),
}.items()}


class SimNode(Node):
    """The world, stepped and rendered in a worker thread."""

    def __init__(self):
        super().__init__('sim_node')
        # Before anything can fail: destroy_node() must work on a half-built node.
        self._stop = threading.Event()
        self._worker = self._publisher = None
        from leo_ros.ros.parameters import declare, warn_undeclared
        self.config = SimNodeConfig(**declare(self, SIM_PARAMETERS))
        warn_undeclared(self, SIM_PARAMETERS)
        self.world = World(self.config.seed, WorldConfig(camera=self.config.camera()))
        self.task = None
        self._commands = deque()
        self._lock = threading.Lock()

        sensor = qos_profile_sensor_data
        self.pub_image = self.create_publisher(Image, 'camera/image', sensor)
        self.pub_depth = self.create_publisher(Image, 'camera/depth', sensor)
        self.pub_info = self.create_publisher(CameraInfo, 'camera/camera_info', sensor)
        self.pub_points = self.create_publisher(PointCloud2, 'camera/points', sensor)
        self.pub_camera_pose = self.create_publisher(PoseStamped, 'camera/pose', 10)
        self.pub_odom = self.create_publisher(Odometry, 'odom', 10)
        self.pub_pose = self.create_publisher(PoseStamped, 'robot_pose', 10)
        self.pub_status = self.create_publisher(String, 'sim/status', latched_qos(10))
        self._create_world_publishers()
        from diagnostic_msgs.msg import DiagnosticArray
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._counts = {'rendered': 0, 'published': 0, 'dropped': 0, 'render_ms': 0.0,
                        'last_error': ''}
        self._rate_window = deque(maxlen=50)      # publish times, for the achieved rate
        self.create_timer(1.0, self._publish_diagnostics)
        self.map_from_odom = pose_matrix(self.config.odom_x, self.config.odom_y, 0.0,
                                         self.config.odom_yaw)
        self.tf = None
        if self.config.publish_tf:
            from leo_ros.ros.conversions import matrix_to_transform_stamped
            from leo_ros.ros.tf import TransformPublisher
            self.tf = TransformPublisher(self)
            link, optical = camera_mount(self.world.config.robot)
            cfg = self.config
            self.tf.send_static([
                matrix_to_transform_stamped(link, cfg.base_frame, cfg.camera_link_frame,
                                            self.get_clock().now().to_msg()),
                matrix_to_transform_stamped(optical, cfg.camera_link_frame, cfg.camera_frame,
                                            self.get_clock().now().to_msg())])
        self.pub_clock = None
        if self.config.publish_clock:
            from rosgraph_msgs.msg import Clock
            self.pub_clock = self.create_publisher(Clock, '/clock', 10)

        inputs = MutuallyExclusiveCallbackGroup()
        self.create_subscription(PoseStamped, 'goal_pose', self._on_goal, 10,
                                 callback_group=inputs)
        self.create_subscription(Twist, 'cmd_vel', self._on_cmd_vel, 10, callback_group=inputs)
        self.create_subscription(ManipulatorCommand, 'leo/manipulator_command',
                                 self._on_manipulator, 10, callback_group=inputs)
        services = MutuallyExclusiveCallbackGroup()
        self.create_service(ResetWorld, 'sim/reset', self._on_reset, callback_group=services)
        self.create_service(TaskStatus, 'sim/task_status', self._on_status,
                            callback_group=services)
        self.create_service(SaveTopdown, 'sim/save_topdown', self._on_save_topdown,
                            callback_group=services)
        # What the top-down picture shows besides the scene: the robot's trail and last goal.
        self._trail = deque(maxlen=5000)
        self._last_goal = None

        if self.config.task_family:
            self._draw_task(self.config.task_family, 0)
        self._latest = None
        self._frame_ready = threading.Condition()
        self._worker = threading.Thread(target=self._run, name='sim_worker', daemon=True)
        self._publisher = threading.Thread(target=self._run_publisher, name='sim_publisher',
                                           daemon=True)
        self._publish_world(reset=False)
        self._worker.start()
        self._publisher.start()
        self.get_logger().info(
            f'sim_node: scene {self.config.seed} '
            f'({self.world.scene.width:.1f} x {self.world.scene.depth:.1f} m, '
            f'{len(self.world.scene.objects)} objects) at {self.config.rate} Hz, '
            f'{self.config.width}x{self.config.height}')

    def _create_world_publishers(self):
        """Create the map (latched, like map_server) and leo/world_reset (latched) publishers."""
        from nav_msgs.msg import OccupancyGrid
        from std_msgs.msg import Header
        self.pub_map = self.create_publisher(OccupancyGrid, 'map', latched_qos())
        self.pub_world_reset = self.create_publisher(Header, 'leo/world_reset', latched_qos())
        self._publishing = threading.Lock()    # held while a frame goes out

    def _publish_world(self, reset=True):
        """
        Publish the map; after a reset, first make sure no old frame follows leo/world_reset.

        Called in the worker: the unpublished old frame is dropped and an old frame being
        published is waited for, so every frame after leo/world_reset shows the new world.
        """
        from leo_ros.ros.maps import occupancy_grid_message
        from std_msgs.msg import Header
        stamp = self._stamp(self.world.time)
        if reset:
            with self._frame_ready:
                self._latest = None
            with self._publishing:
                self.pub_world_reset.publish(Header(stamp=stamp,
                                                    frame_id=self.config.map_frame))
        resolution, origin, grid = self.world.occupancy()
        self.pub_map.publish(occupancy_grid_message(resolution, origin, grid,
                                                    self.config.map_frame, stamp))

    # ---- callbacks: enqueue only
    def _on_goal(self, msg):
        self._commands.append(('goal', msg))

    def _on_cmd_vel(self, msg):
        self._commands.append(('cmd_vel', msg))

    def _on_manipulator(self, msg):
        self._commands.append(('manipulator', msg))

    def _on_reset(self, request, response):
        done = threading.Event()
        self._commands.append(('reset', (request, response, done)))
        if not done.wait(30.0):
            response.success, response.message = False, 'reset timed out in the worker'
        return response

    def _on_save_topdown(self, request, response):
        done = threading.Event()
        self._commands.append(('topdown', (request, response, done)))
        if not done.wait(30.0):
            response.success, response.message = False, 'drawing timed out in the worker'
        return response

    def _on_status(self, request, response):
        done = threading.Event()
        self._commands.append(('status', (request, response, done)))
        if not done.wait(10.0):
            response.detail = 'status timed out in the worker'
        return response

    # ---- worker
    def _run(self):
        period = 1.0 / self.config.rate
        next_tick = time.monotonic()
        while not self._stop.is_set():
            try:
                self._tick(period)
            except Exception as exc:  # keep the world running; say what broke
                if not self.context.ok():
                    break  # shutting down: publishers are gone
                self.get_logger().error(f'sim step failed: {exc!r}')
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_tick = time.monotonic()  # running late: newest frame wins, no catch-up

    def _tick(self, period):
        with self._lock:
            while self._commands:
                kind, payload = self._commands.popleft()
                self._handle(kind, payload)
            self.world.step(period)
            render_start = time.perf_counter()
            frame = self.world.observe()
            self._counts['render_ms'] = (time.perf_counter() - render_start) * 1e3
            self._counts['rendered'] += 1
            pose = self.world.robot_pose
            if not self._trail or math.dist(self._trail[-1], pose[:2]) > 0.02:
                self._trail.append(tuple(pose[:2]))
            velocity = getattr(self.world, 'velocity_now', (0.0, 0.0))
            sim_time = self.world.time
        # Hand over to the publisher thread; an unpublished older frame is dropped.
        with self._frame_ready:
            if self._latest is not None:
                self._counts['dropped'] += 1
            self._latest = (frame, pose, velocity, sim_time)
            self._frame_ready.notify()

    def _run_publisher(self):
        """Publish the newest rendered frame while the next one renders."""
        while not self._stop.is_set():
            with self._frame_ready:
                if self._latest is None:
                    self._frame_ready.wait(0.2)
                item, self._latest = self._latest, None
            if item is None:
                continue
            try:
                with self._publishing:
                    self._publish(*item)
                self._counts['published'] += 1
                self._rate_window.append(time.monotonic())
            except Exception as exc:
                if not self.context.ok():
                    break
                self._counts['last_error'] = f'publishing failed: {exc!r}'
                self.get_logger().error(self._counts['last_error'])

    def _publish_diagnostics(self):
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
        window = list(self._rate_window)
        rate = (len(window) - 1) / (window[-1] - window[0]) if len(window) > 2 and \
            window[-1] > window[0] else 0.0
        level = DiagnosticStatus.OK if rate >= 0.9 * self.config.rate else DiagnosticStatus.WARN
        counts = dict(self._counts)
        values = {'rate_hz': f'{rate:.1f}', 'target_rate_hz': f'{self.config.rate:.1f}',
                  'render_ms': f'{counts["render_ms"]:.1f}', 'rendered': counts['rendered'],
                  'published': counts['published'], 'dropped_frames': counts['dropped'],
                  'scene_seed': self.world.scene_seed,
                  'task': self.task.instruction if self.task is not None else '',
                  'robot_pose': ' '.join(f'{v:.2f}' for v in self.world.robot_pose),
                  'sim_time_s': f'{self.world.time:.1f}', 'last_error': counts['last_error']}
        note = '' if level == DiagnosticStatus.OK else ' (below target)'
        status = DiagnosticStatus(level=level, name='leo_ros: sim_node', hardware_id='leo_ros',
                                  message=f'{rate:.1f} Hz{note}')
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.pub_diagnostics.publish(array)

    def _stamp(self, sim_time) -> Time:
        if self.pub_clock is not None:
            return Time(sec=int(sim_time), nanosec=int((sim_time % 1.0) * 1e9) % 1_000_000_000)
        return self.get_clock().now().to_msg()

    def _publish(self, frame, pose, velocity, sim_time):
        cfg = self.config
        stamp = self._stamp(sim_time)
        if self.pub_clock is not None:
            from rosgraph_msgs.msg import Clock
            self.pub_clock.publish(Clock(clock=stamp))
        odom_from_base = np.linalg.inv(self.map_from_odom) @ pose_matrix(*pose[:2], 0.0, pose[2])
        if self.tf is not None:     # before the data that needs it
            from leo_ros.ros.conversions import matrix_to_transform_stamped
            self.tf.send([
                matrix_to_transform_stamped(self.map_from_odom, cfg.map_frame, cfg.odom_frame,
                                            stamp),
                matrix_to_transform_stamped(odom_from_base, cfg.odom_frame, cfg.base_frame,
                                            stamp)])
        messages = rendered_frame_messages(frame, cfg.camera_frame, cfg.map_frame, stamp,
                                           points=cfg.publish_points, instances=True)
        self.pub_image.publish(messages['image'])
        self.pub_depth.publish(messages['depth'])
        self.pub_info.publish(messages['camera_info'])
        if cfg.publish_points:
            self.pub_points.publish(messages['points'])
        self.pub_camera_pose.publish(messages['camera_pose'])
        robot = pose_stamped(*pose, frame_id=cfg.map_frame, stamp=stamp)
        self.pub_pose.publish(robot)
        odom = Odometry()
        odom.header.frame_id = cfg.odom_frame
        odom.header.stamp = stamp
        odom.child_frame_id = cfg.base_frame
        odom.pose.pose = matrix_to_pose(odom_from_base)     # the base in the odom frame
        odom.twist.twist.linear.x, odom.twist.twist.angular.z = (float(v) for v in velocity)
        self.pub_odom.publish(odom)

    def _say(self, text, error=False):
        # One severity per call site: rclpy (Jazzy) rejects a site that switches severities.
        if error:
            self.get_logger().warning(text)
        else:
            self.get_logger().info(text)
        self.pub_status.publish(String(data=text))

    def _handle(self, kind, payload):
        if kind == 'goal':
            self._handle_goal(payload)
        elif kind == 'cmd_vel':
            self.world.set_velocity(payload.linear.x, payload.angular.z)
        elif kind == 'manipulator':
            self._handle_manipulator(payload)
        elif kind == 'reset':
            self._handle_reset(*payload)
        elif kind == 'status':
            self._handle_status(*payload)
        elif kind == 'topdown':
            self._handle_topdown(*payload)

    def _handle_goal(self, msg):
        frame = msg.header.frame_id
        if frame not in ('', self.config.map_frame, self.config.odom_frame):
            self._say(f'refused goal: frame {frame!r} is neither {self.config.map_frame!r} '
                      f'nor {self.config.odom_frame!r}', error=True)
            return
        x, y = msg.pose.position.x, msg.pose.position.y
        try:
            yaw = quaternion_to_yaw(msg.pose.orientation)
        except ValueError as exc:
            self._say(f'refused goal: {exc}', error=True)
            return
        if frame == self.config.odom_frame:    # into the map, where the world plans
            x, y, yaw = planar_pose(self.map_from_odom @ pose_matrix(x, y, 0.0, yaw))
        if not all(math.isfinite(v) for v in (x, y, yaw)):
            self._say(f'refused goal: not finite ({x}, {y}, {yaw})', error=True)
            return
        result = self.world.set_goal(x, y, yaw)
        if result.ok:
            self._last_goal = (x, y, yaw)
        self._say(('goal accepted: ' if result.ok else 'refused goal: ') + result.message,
                  error=not result.ok)

    def _handle_manipulator(self, msg):
        world = self.world
        if msg.object_id and msg.object_id not in world.scene.objects:
            self._say(f'refused manipulator command: no object {msg.object_id} in scene '
                      f'{world.scene_seed} (ids {sorted(world.scene.objects)})', error=True)
            return
        pick, place = msg.pick_pose.position, msg.place_pose.position
        place_yaw = quaternion_to_yaw(msg.place_pose.orientation)
        if msg.kind == ManipulatorCommand.KIND_STOP:
            world.stop()
            self._say('stopped')
            return
        if msg.kind == ManipulatorCommand.KIND_EE_DELTA:
            result = world.ee_delta(EEDelta(place.x, place.y, place.z, place_yaw, msg.gripper))
        elif msg.kind in (ManipulatorCommand.KIND_PICK, ManipulatorCommand.KIND_PICK_PLACE):
            before = world.snapshot()
            result = world.pick(msg.object_id) if msg.object_id else \
                world.pick_at(pick.x, pick.y, pick.z)
            if result.ok and msg.kind == ManipulatorCommand.KIND_PICK_PLACE:
                pick_yaw = quaternion_to_yaw(msg.pick_pose.orientation)
                result = world.place_at(place.x, place.y, place.z, place_yaw - pick_yaw)
                if not result.ok:  # all or nothing: the object stays where it was
                    world.restore(before)
        elif msg.kind == ManipulatorCommand.KIND_PLACE:
            result = world.place_at(place.x, place.y, place.z)
        else:
            self._say(f'refused manipulator command: unknown kind {msg.kind}', error=True)
            return
        self._say(('manipulation: ' if result.ok else 'refused manipulator command: ')
                  + result.message, error=not result.ok)

    def _draw_task(self, family, task_seed):
        from leo_ros.data.engine import TaskSampler
        self.task = TaskSampler().sample(self.world, family, np.random.default_rng(task_seed))
        if self.task.situation is not None:
            self.world.set_robot_pose(*self.task.situation)

    def _handle_topdown(self, request, response, done):
        from leo_ros.sim.topdown import draw_topdown
        try:
            title = self.task.instruction if self.task is not None else \
                f'scene {self.world.scene_seed}'
            trail = np.array(self._trail) if len(self._trail) > 1 else None
            draw_topdown(self.world.scene, request.path, robot_pose=self.world.robot_pose,
                         goals=[self._last_goal] if self._last_goal else (),
                         paths=[trail] if trail is not None else (), title=title)
            response.success, response.message = True, request.path
        except (OSError, ValueError) as exc:
            response.success, response.message = False, f'cannot draw: {exc}'
        finally:
            done.set()

    def _handle_reset(self, request, response, done):
        try:
            self.world.reset(int(request.seed))
            self.task = None
            self._trail.clear()
            self._last_goal = None
            if request.task_family:
                self._draw_task(request.task_family, int(request.task_seed))
            self._publish_world()
            response.success = True
            response.message = (f'scene {request.seed} (world {self.world.world_id}): '
                                f'{len(self.world.scene.objects)} objects, robot at '
                                f'{tuple(round(v, 2) for v in self.world.robot_pose)}')
            if self.task is not None:
                response.instruction = self.task.instruction
                response.task_json = json.dumps({
                    'family': self.task.family, 'instruction': self.task.instruction,
                    'target_ids': list(self.task.target_ids), 'answer': self.task.answer,
                    'situation': list(self.task.situation or ())})
            self._say(response.message)
        except (ValueError, KeyError) as exc:
            response.success, response.message = False, str(exc)
            self._say(f'reset failed: {exc}', error=True)
        finally:
            done.set()

    def _handle_status(self, request, response, done):
        try:
            response.has_task = self.task is not None
            if self.task is not None:
                task = self.task
                response.family, response.instruction = task.family, task.instruction
                response.success = bool(self.world.task_success(task, request.answer or None))
                if task.family == 'nav':
                    gap, heading = self.world.nav_error(task.target_ids[0])
                    response.detail = (f'gap {gap:.2f} m, heading error '
                                       f'{math.degrees(heading):.0f} deg')
                elif task.family in ('pick_place', 'plan'):
                    obj = self.world.scene.object(task.target_ids[0])
                    response.detail = (f'object {obj.id} rests on '
                                       f'{self.world.graph.support(obj.id)}, held '
                                       f'{self.world.held_id}')
                else:
                    response.detail = 'answer compared case- and punctuation-insensitively'
            else:
                response.detail = 'no task: call sim/reset with a task_family'
        finally:
            done.set()

    def destroy_node(self):
        self._stop.set()
        for thread in (self._worker, self._publisher):
            if thread is not None and thread.is_alive():
                thread.join(timeout=5.0)
        super().destroy_node()


def main(args=None) -> int:
    apply_ros_environment()
    rclpy.init(args=args)
    node = None
    try:
        try:
            node = SimNode()
        except ValueError as error:      # a bad parameter: one clear line, exit code 2
            rclpy.logging.get_logger('sim_node').fatal(f'bad parameter: {error}')
            return 2
        executor = MultiThreadedExecutor(num_threads=3)
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
