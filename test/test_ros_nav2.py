"""
Nav2 (issue 21, item 3): policy_node against a NavigateToPose server, in separate processes.

The server is ``leo_stand_ins nav2``: an action server with Nav2's name and nav2_msgs' type
(built from its published definition by interfaces/build.sh where nav2_msgs is missing) that
drives a virtual base and publishes its TF; it is the peer, not the thing under test. Navigation
goes through the action with feedback and result, is cancelled by /leo/stop and by a new
instruction, never also on goal_pose; a rejecting or absent server gives a clear error.
"""

import time

from action_msgs.msg import GoalStatus
from leo_ros.ros.process import wait_until
import pytest
from ros_agent_helpers import start_policy, start_stand_in

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_navigation_goes_through_nav2_with_feedback_result_and_cancel(spawn, robot):
    from nav2_msgs.action import NavigateToPose
    from std_srvs.srv import Trigger
    nav2 = start_stand_in(spawn, 'nav2', 'speed:=0.6')
    robot.wait_action_server(NavigateToPose, 'navigate_to_pose')
    policy = start_policy(spawn)                  # navigation 'auto': Nav2 when it is up
    robot.publish_scene(centers=((2.0, 1.0, 0.4), (-1.0, 0.0, 0.4)), labels=('chair', 'mug'))
    robot.activate()
    robot.ready()

    status, result, feedback = robot.execute('go to the chair', timeout=60.0)
    assert status == GoalStatus.STATUS_SUCCEEDED and result.success, result
    distances = [f.distance_remaining for f in feedback if f.phase == 'waiting']
    assert len(distances) >= 3 and distances[0] > distances[-1] > 0, distances
    events = robot.events()
    accepted = [e.split() for e in events if e.startswith('nav2 accepted')]
    assert len(accepted) == 1 and accepted[0][4] == 'map', events    # the chair, in the map
    assert abs(float(accepted[0][2]) - 2.0) < 0.1 and abs(float(accepted[0][3]) - 1.0) < 0.1
    assert 'nav2 succeeded' in events
    assert robot.messages('goal_pose') == [], 'goal_pose used alongside the action'

    # /leo/stop cancels the Nav2 goal; the task ends unsuccessful and the base stops.
    since = time.monotonic()
    status, result, _ = robot.execute('go to the mug', timeout=60.0, stop_after='waiting')
    assert not result.success and status != GoalStatus.STATUS_SUCCEEDED, result
    assert wait_until(lambda: 'nav2 canceled' in robot.events(since), timeout=5.0), \
        robot.events(since)
    time.sleep(0.3)
    assert robot.messages('cmd_vel', since)[-1].linear.x == 0.0

    # A new instruction cancels the goal of the previous one (the base is near the chair,
    # the mug 3 m away).
    since = time.monotonic()
    assert robot.instruct.call('go to the mug', timeout=20.0, spin=False).success
    assert wait_until(lambda: any(e.startswith('nav2 accepted') for e in robot.events(since)),
                      timeout=5.0)
    time.sleep(0.5)
    assert robot.instruct.call('go to the chair', timeout=20.0, spin=False).success
    assert wait_until(lambda: 'nav2 canceled' in robot.events(since), timeout=5.0), \
        robot.events(since)
    robot.call(Trigger, 'leo/stop', Trigger.Request())
    assert robot.messages('goal_pose') == []
    assert nav2.poll() is None and policy.poll() is None


def test_a_rejecting_nav2_gives_a_clear_error(spawn, robot):
    from nav2_msgs.action import NavigateToPose
    start_stand_in(spawn, 'nav2', 'mode:=reject')
    robot.wait_action_server(NavigateToPose, 'navigate_to_pose')
    start_policy(spawn, 'navigation:=nav2')
    robot.publish_scene(centers=((2.0, 1.0, 0.4),), labels=('chair',))
    robot.activate()
    robot.ready()
    reply = robot.instruct.call('go to the chair', timeout=20.0, spin=False)
    assert not reply.success and 'rejected the goal' in reply.error, reply
    status, result, _ = robot.execute('go to the chair', timeout=30.0)
    assert status == GoalStatus.STATUS_ABORTED and 'rejected the goal' in result.error, result
    assert robot.messages('goal_pose') == []


def test_an_absent_nav2_gives_a_clear_error_and_auto_falls_back_to_goal_pose(spawn, robot):
    robot.place_base(0.0, 0.0)
    robot.publish_scene(centers=((2.0, 1.0, 0.4),), labels=('chair',))
    start_policy(spawn, 'navigation:=nav2', 'nav2_timeout:=0.5')
    robot.activate()
    robot.ready()
    reply = robot.instruct.call('go to the chair', timeout=20.0, spin=False)
    assert not reply.success and 'no action server' in reply.error, reply
    status, result, _ = robot.execute('go to the chair', timeout=30.0)
    assert status == GoalStatus.STATUS_ABORTED and 'no action server' in result.error, result
    assert robot.messages('goal_pose') == []


def test_without_a_nav2_server_auto_uses_goal_pose(spawn, robot):
    robot.place_base(0.0, 0.0)
    robot.publish_scene(centers=((2.0, 1.0, 0.4),), labels=('chair',))
    start_policy(spawn)
    robot.activate()
    robot.ready()
    reply = robot.instruct.call('go to the chair', timeout=20.0, spin=False)
    assert reply.success, reply
    assert wait_until(lambda: robot.messages('goal_pose'), timeout=5.0)
    assert robot.messages('goal_pose')[0].header.frame_id == 'map'
