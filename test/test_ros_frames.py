"""
TF and frames (issue 21, item 2): sim_node, policy_node and this test in separate processes.

The simulator runs with its odom frame offset from the map (map != odom), so that a policy
reading its pose from odometry, or deciding "reached" in odom, would fail here. Goals, reached
checks and stop behaviour must all be in the fixed frame (map); a scene in the camera frame is
transformed through TF; one in a frame TF does not know is refused; without TF nothing moves.
"""

import math
import sys
import time

from leo_ros.ros.process import wait_until
import numpy as np
import pytest
from ros_agent_helpers import start_policy

pytestmark = [pytest.mark.ros, pytest.mark.slow]

ODOM = (1.5, -0.5, 0.3)       # the odom frame's pose in the map


def _reachable_goal(seed=0):
    """Return a free, reachable point about a metre from the simulated robot's start."""
    from leo_ros.sim.world import World
    world = World(seed)
    x0, y0, yaw0 = world.robot_pose
    for distance in (1.0, 0.8, 1.2, 0.6):
        for turn in np.linspace(0.0, 2.0 * math.pi, 12, endpoint=False):
            x = x0 + distance * math.cos(yaw0 + turn)
            y = y0 + distance * math.sin(yaw0 + turn)
            if world.base_is_free(x, y, margin=0.1) and world.set_goal(x, y, 0.0).ok:
                return x, y
    raise AssertionError('no reachable goal near the start')


def _numbers(text, key, count):
    words = text.split()
    index = words.index(key)
    return [float(w) for w in words[index + 1:index + 1 + count]]


def test_frames_with_map_and_odom_apart(spawn, robot):
    from geometry_msgs.msg import PoseStamped
    from leo_ros.ros.conversions import pose_to_matrix, quaternion_to_yaw
    from nav_msgs.msg import Odometry
    from std_srvs.srv import Trigger
    node = robot.node
    poses, odoms, cameras = [], [], []
    node.create_subscription(PoseStamped, 'robot_pose', poses.append, 10)
    node.create_subscription(Odometry, 'odom', odoms.append, 10)
    node.create_subscription(PoseStamped, 'camera/pose', cameras.append, 10)

    policy = start_policy(spawn, 'navigation:=goal_pose', 'goal_tolerance:=0.2')
    goal = _reachable_goal()
    robot.publish_scene(centers=((goal[0], goal[1], 0.4), (goal[0] + 3, goal[1], 0.4)),
                        labels=('chair', 'table'))
    robot.activate()

    # No TF yet: not ready, the reason names both frames, and nothing moves.
    assert robot.instruct.wait(30.0)
    since = time.monotonic()
    replies = []
    assert wait_until(lambda: replies.append(robot.instruct.call(
        'go to the chair', timeout=30.0, spin=False)) or 'no scene' not in replies[-1].error,
        timeout=30.0, period=0.5), replies[-1]
    reply = replies[-1]
    assert not reply.success and 'no transform map -> base_link' in reply.error, reply
    time.sleep(0.5)
    assert robot.motion_since(since) == {}

    sim = spawn([sys.executable, '-m', 'leo_ros.nodes.sim_node', '--ros-args',
                 '-p', f'odom_x:={ODOM[0]}', '-p', f'odom_y:={ODOM[1]}',
                 '-p', f'odom_yaw:={ODOM[2]}', '-p', 'width:=160', '-p', 'height:=120'],
                name='sim_node')
    assert wait_until(lambda: poses and odoms and cameras, timeout=60.0), sim.output[-2000:]
    reply = robot.ready()
    # The pose the policy decided with is the robot's pose in the map, not the odometry's.
    x, y, yaw = _numbers(reply.response, 'pose', 3)
    truth = poses[-1].pose
    assert math.hypot(x - truth.position.x, y - truth.position.y) < 0.02, (reply, truth)
    assert abs(math.remainder(yaw - quaternion_to_yaw(truth.orientation), math.tau)) < 0.02
    in_odom = odoms[-1].pose.pose.position
    assert odoms[-1].header.frame_id == 'odom'
    assert math.hypot(x - in_odom.x, y - in_odom.y) > 0.5, 'odom equals map: no offset'

    # A goal in the map frame, reached in the map frame.
    since = time.monotonic()
    status, result, feedback = robot.execute('go to the chair', timeout=90.0)
    assert result.success, (result, sim.output[-1500:])
    goals = robot.messages('goal_pose', since)
    assert goals and goals[0].header.frame_id == 'map'
    assert math.hypot(goals[0].pose.position.x - goal[0],          # the chair's sampled
                      goals[0].pose.position.y - goal[1]) < 0.1    # centre, in the map
    assert any(f.phase == 'waiting' and f.distance_remaining > 0 for f in feedback)
    wait_until(lambda: poses[-1].header.stamp != truth, timeout=2.0)
    here = poses[-1].pose.position
    assert math.hypot(here.x - goal[0], here.y - goal[1]) <= 0.25, (here, goal)

    # A scene in the camera's optical frame is transformed into the map through TF.
    robot.publish_scene(frame_id='camera_optical_frame', centers=((0.0, 0.0, 2.0),),
                        labels=('box',))
    replies = []

    def transformed():
        # The robot may still turn to the goal's heading: compare with the camera pose now.
        expected = pose_to_matrix(cameras[-1].pose) @ np.array([0.0, 0.0, 2.0, 1.0])
        reply = robot.instruct.call('where are you', timeout=20.0, spin=False)
        replies.append((expected, reply))
        return reply.success and 'frame map' in reply.response and \
            np.allclose(_numbers(reply.response, 'first', 3), expected[:3], atol=0.05)
    assert wait_until(transformed, timeout=20.0, period=0.5), replies[-1]

    # A scene in a frame TF does not know is refused with the reason; nothing moves.
    robot.publish_scene(frame_id='nowhere', centers=((1.0, 0.0, 0.0),), labels=('chair',))
    since = time.monotonic()
    refusals = []
    assert wait_until(lambda: refusals.append(robot.instruct.call(
        'go to the chair', timeout=20.0, spin=False)) or 'nowhere' in refusals[-1].error,
        timeout=20.0, period=0.5), refusals[-1]
    assert not refusals[-1].success
    assert not robot.messages('goal_pose', since)

    # Stop while the goal is followed: the goal at the current pose is stamped in the map.
    start = poses[-1].pose.position
    robot.publish_scene(centers=((start.x - (goal[0] - start.x), start.y, 0.4),),
                        labels=('chair',))
    time.sleep(0.5)
    robot.instruct.call('go to the chair', timeout=20.0, spin=False)
    time.sleep(0.5)
    since = time.monotonic()
    robot.call(Trigger, 'leo/stop', Trigger.Request())
    assert wait_until(lambda: robot.messages('goal_pose', since), timeout=5.0)
    stop_goal = robot.messages('goal_pose', since)[-1]
    now = poses[-1].pose.position
    assert stop_goal.header.frame_id == 'map'
    assert math.hypot(stop_goal.pose.position.x - now.x,
                      stop_goal.pose.position.y - now.y) < 0.3, (stop_goal, now)
    assert policy.poll() is None and sim.poll() is None
