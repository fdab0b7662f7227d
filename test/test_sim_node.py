"""sim_node as a real process, against subscribers, publishers and clients in this process."""

import math
from pathlib import Path
import sys
import time

from leo_ros.sim import expert
from leo_ros.sim.world import World
import numpy as np
import pytest

pytestmark = pytest.mark.ros

SIM_NODE = str(Path(sys.executable).parent / 'sim_node')


def _spin_until(executor, predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        executor.spin_once(timeout_sec=0.05)
    return bool(predicate())


def _node(ros_context, name):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    node = rclpy.create_node(name, context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    return node, executor


def test_publishes_camera_and_odometry_steadily_while_turning(ros_context, spawn):
    from geometry_msgs.msg import PoseStamped, Twist, Vector3
    from leo_ros.ros.conversions import (depth_image_to_points, image_to_array,
                                         pointcloud2_to_array, pointcloud2_to_xyz_rgb,
                                         pose_to_matrix, quaternion_to_yaw)
    from nav_msgs.msg import Odometry
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2

    sim = spawn([SIM_NODE], name='sim_node')  # no arguments: the defaults must run
    node, executor = _node(ros_context, 'sim_probe')
    got = {name: [] for name in ('points', 'image', 'depth', 'info', 'camera', 'odom')}
    arrivals = []

    def keep(name):
        def callback(msg):
            got[name].append(msg)
            del got[name][:-30]  # bounded memory
            if name == 'points':
                arrivals.append(time.monotonic())
        return callback

    node.create_subscription(PointCloud2, 'camera/points', keep('points'),
                             qos_profile_sensor_data)
    node.create_subscription(Image, 'camera/image', keep('image'), qos_profile_sensor_data)
    node.create_subscription(Image, 'camera/depth', keep('depth'), qos_profile_sensor_data)
    node.create_subscription(CameraInfo, 'camera/camera_info', keep('info'),
                             qos_profile_sensor_data)
    node.create_subscription(PoseStamped, 'camera/pose', keep('camera'), 10)
    node.create_subscription(Odometry, 'odom', keep('odom'), 10)
    assert _spin_until(executor, lambda: len(arrivals) >= 3, 60.0), sim.output
    # Measure while the robot turns in place, so that every frame is a new view.
    turn = node.create_publisher(Twist, 'cmd_vel', 10)
    turning = node.create_timer(0.1, lambda: turn.publish(Twist(angular=Vector3(z=0.3))))
    arrivals.clear()
    began = time.monotonic()
    _spin_until(executor, lambda: time.monotonic() - began > 5.0, 6.0)
    rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    # What this machine can render right now (other jobs share its two cores). The node must
    # keep publishing at a good share of what the machine allows, not stall or fall behind. The
    # stated rate itself is a speed figure: with a 35-45 ms render, five-second windows here
    # measured 7.1-10.0 Hz (the test process deserialises every 640x480 cloud too), so a timed
    # test cannot require 9 Hz.
    world = World(0)
    world.observe()
    render_s = []
    for _ in range(5):
        world.robot[2] += 0.05
        began = time.monotonic()
        world.observe()
        render_s.append(time.monotonic() - began)
    machine_hz = 1.0 / float(np.median(render_s))
    print(f'camera/points at {rate:.1f} Hz while turning (stated 10 Hz, 640x480); '
          f'one render here now takes {1e3 / machine_hz:.0f} ms')
    assert rate >= min(5.0, 0.3 * machine_hz)
    assert sim.poll() is None
    turning.cancel()
    turn.publish(Twist())
    assert _spin_until(executor, lambda: got['odom'][-1].twist.twist.angular.z == 0.0, 5.0)

    cloud = got['points'][-1]
    assert (cloud.height, cloud.width) == (480, 640)
    assert {f.name for f in cloud.fields} >= {'x', 'y', 'z', 'rgb', 'instance'}
    # The cloud agrees with depth + camera_info of the same frame.
    stamp = (cloud.header.stamp.sec, cloud.header.stamp.nanosec)
    depth = next(m for m in got['depth'] if (m.header.stamp.sec, m.header.stamp.nanosec) == stamp)
    info = next(m for m in got['info'] if (m.header.stamp.sec, m.header.stamp.nanosec) == stamp)
    image = next(m for m in got['image'] if (m.header.stamp.sec, m.header.stamp.nanosec) == stamp)
    xyz, rgb = pointcloud2_to_xyz_rgb(cloud)
    from_depth = depth_image_to_points(depth, info)
    valid = np.isfinite(xyz).all(-1)
    assert valid.mean() > 0.5
    assert np.allclose(xyz[valid], from_depth[valid], atol=1e-4)
    assert np.allclose(rgb[valid], image_to_array(image)[valid] / 255.0, atol=1 / 255)
    instances = pointcloud2_to_array(cloud)['instance']
    world = World(0)  # the start state again
    assert set(np.unique(instances)) - {-1, 0} <= set(world.scene.objects)
    # camera/pose: the robot only turned, so the camera is the start pose's turned about z.
    camera = pose_to_matrix(got['camera'][-1].pose)
    odom = got['odom'][-1]
    start = world.robot_pose
    assert (odom.pose.pose.position.x, odom.pose.pose.position.y) == pytest.approx(start[:2])
    world.set_robot_pose(*start[:2], quaternion_to_yaw(got['odom'][-1].pose.pose.orientation))
    assert np.allclose(camera, world.camera_pose(), atol=1e-5)
    assert camera[2, 2] < 0  # the optical axis looks down
    assert odom.child_frame_id == 'base_link' and odom.header.frame_id == 'odom'


def test_goals_commands_reset_and_task_success(ros_context, spawn):
    from geometry_msgs.msg import PoseStamped
    from leo_ros.data.engine import TaskSampler
    from leo_ros.msg import ManipulatorCommand
    from leo_ros.ros.conversions import pose_stamped, quaternion_to_yaw
    from leo_ros.srv import ResetWorld, TaskStatus
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from std_msgs.msg import String

    sim = spawn([SIM_NODE, '--ros-args', '-p', 'width:=320', '-p', 'height:=240',
                 '-p', 'publish_points:=false', '-p', 'rate:=20.0'], name='sim_node')
    node, executor = _node(ros_context, 'sim_commander')
    statuses, poses = [], []
    node.create_subscription(String, 'sim/status', lambda m: statuses.append(m.data),
                             QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    node.create_subscription(PoseStamped, 'robot_pose', poses.append, 10)
    goal_pub = node.create_publisher(PoseStamped, 'goal_pose', 10)
    manip_pub = node.create_publisher(ManipulatorCommand, 'leo/manipulator_command', 10)
    reset = node.create_client(ResetWorld, 'sim/reset')
    status = node.create_client(TaskStatus, 'sim/task_status')
    assert _spin_until(executor, lambda: poses and goal_pub.get_subscription_count() > 0
                       and manip_pub.get_subscription_count() > 0
                       and reset.service_is_ready() and status.service_is_ready(),
                       60.0), sim.output

    def call(client, request):
        future = client.call_async(request)
        assert _spin_until(executor, future.done, 30.0)
        return future.result()

    # Refusals, said on sim/status.
    goal_pub.publish(pose_stamped(-3.0, 1.0, 0.0))
    assert _spin_until(executor, lambda: any('refused goal' in s and 'outside the map' in s
                                             for s in statuses), 10.0), statuses
    command = ManipulatorCommand(kind=ManipulatorCommand.KIND_PICK, object_id=999)
    manip_pub.publish(command)
    assert _spin_until(executor, lambda: any('no object 999' in s for s in statuses), 10.0)

    # No task yet.
    answer = call(status, TaskStatus.Request())
    assert not answer.has_task and 'no task' in answer.detail

    # Reset to a seed with a navigation task; the same draw here gives its expert goal.
    response = call(reset, ResetWorld.Request(seed=5, task_family='nav', task_seed=1))
    assert response.success and response.instruction, response.message
    world = World(5)
    task = TaskSampler().sample(world, 'nav', np.random.default_rng(1))
    assert task.instruction == response.instruction
    answer = call(status, TaskStatus.Request())
    assert answer.has_task and answer.family == 'nav'
    start = world.robot_pose
    if not world.nav_success(task.target_ids[0]):
        assert not answer.success
    goal = expert.nav_goal(world, task.target_ids[0], start=start[:2])
    goal_pub.publish(pose_stamped(goal.x, goal.y, goal.yaw))

    def arrived():
        if not poses:
            return False
        p = poses[-1].pose
        return (math.dist((p.position.x, p.position.y), (goal.x, goal.y)) < 0.05
                and abs(quaternion_to_yaw(p.orientation) - goal.yaw) < 0.05)

    assert _spin_until(executor, arrived, 60.0), (statuses[-3:], poses[-1] if poses else None)
    answer = call(status, TaskStatus.Request())
    assert answer.success, answer.detail

    # A pick-and-place task, done with the expert's ManipulatorCommand.
    response = call(reset, ResetWorld.Request(seed=5, task_family='pick_place', task_seed=2))
    assert response.success and response.instruction, response.message
    task = TaskSampler().sample(World(5), 'pick_place', np.random.default_rng(2))
    assert task.instruction == response.instruction
    assert not call(status, TaskStatus.Request()).success
    action = task.actions[0]
    command = ManipulatorCommand(kind=ManipulatorCommand.KIND_PICK_PLACE,
                                 object_id=task.target_ids[0])
    command.header.frame_id = 'map'
    command.pick_pose = pose_stamped(action.pick_x, action.pick_y, action.pick_yaw,
                                     z=action.pick_z).pose
    command.place_pose = pose_stamped(action.place_x, action.place_y, action.place_yaw,
                                      z=action.place_z).pose
    manip_pub.publish(command)
    assert _spin_until(executor, lambda: any(s.startswith('manipulation: placed')
                                             for s in statuses), 10.0), statuses[-3:]
    answer = call(status, TaskStatus.Request())
    assert answer.success, answer.detail
    assert sim.poll() is None


def test_simulated_clock(ros_context, spawn):
    from nav_msgs.msg import Odometry
    from rosgraph_msgs.msg import Clock

    sim = spawn([SIM_NODE, '--ros-args', '-p', 'publish_clock:=true', '-p', 'rate:=20.0',
                 '-p', 'width:=160', '-p', 'height:=120', '-p', 'publish_points:=false'],
                name='sim_node')
    node, executor = _node(ros_context, 'clock_probe')
    clocks, odoms = [], []
    node.create_subscription(Clock, '/clock', lambda m: clocks.append(
        m.clock.sec + m.clock.nanosec * 1e-9), 10)
    node.create_subscription(Odometry, 'odom', odoms.append, 10)
    assert _spin_until(executor, lambda: len(clocks) >= 10 and odoms, 60.0), sim.output
    steps = np.diff(clocks[-8:])
    assert np.allclose(steps, 0.05, atol=1e-6)  # one world step of 1 / rate per frame
    stamp = odoms[-1].header.stamp
    assert any(abs(stamp.sec + stamp.nanosec * 1e-9 - c) < 1e-6 for c in clocks)
