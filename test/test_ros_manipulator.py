"""
Manipulator outputs (issue 21, item 4), each process apart: policy_node, a gripper, this test.

End-effector steps go out as geometry_msgs/TwistStamped (MoveIt Servo's input), pick and place
targets as PoseStamped, the gripper through control_msgs' GripperCommand action (the server is
``leo_stand_ins gripper``, the peer), and ManipulatorCommand as before; each can be switched
off.
"""

import time

from leo_ros.ros.process import wait_until
import pytest
from ros_agent_helpers import start_policy, start_stand_in

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_standard_manipulator_outputs(spawn, robot):
    from control_msgs.action import GripperCommand
    from leo_ros.msg import ManipulatorCommand
    start_stand_in(spawn, 'gripper')
    robot.wait_action_server(GripperCommand, 'gripper_controller/gripper_cmd')
    policy = start_policy(spawn, 'ee_twist_duration:=0.5', 'ee_twist_rate:=20.0')
    robot.place_base(0.8, 0.5)
    robot.publish_scene()                              # a mug at (1.0, 0.5, 0.4)
    robot.activate()
    robot.ready()

    since = time.monotonic()
    reply = robot.instruct.call('grab it', timeout=20.0, spin=False)
    assert reply.success and reply.kind == 'ee_delta', reply
    assert wait_until(lambda: any(e.startswith('gripper goal 0.000') for e in
                                  robot.events(since)), timeout=5.0), robot.events(since)
    time.sleep(0.8)
    twists = robot.messages('leo/ee_twist', since)
    moving = [t for t in twists if t.twist.linear.x]
    assert 5 <= len(moving) <= 15, len(moving)          # 0.5 s at 20 Hz
    assert moving[0].header.frame_id == 'base_link'
    assert moving[0].twist.linear.x == pytest.approx(0.1) and \
        moving[0].twist.linear.z == pytest.approx(0.04)  # 5 cm, 2 cm in 0.5 s
    assert not twists[-1].twist.linear.x and not twists[-1].twist.linear.z, 'no final zero'
    commands = robot.messages('leo/manipulator_command', since)
    assert [c.kind for c in commands] == [ManipulatorCommand.KIND_EE_DELTA]

    since = time.monotonic()
    assert robot.instruct.call('release', timeout=20.0, spin=False).success
    assert wait_until(lambda: any(e.startswith('gripper goal 0.080') for e in
                                  robot.events(since)), timeout=5.0), robot.events(since)

    # /leo/stop mid-stream: one zero twist ends it, and no twist of the stream follows that.
    from std_srvs.srv import Trigger
    since = time.monotonic()
    assert robot.instruct.call('grab it', timeout=20.0, spin=False).success
    assert wait_until(lambda: robot.messages('leo/ee_twist', since), timeout=5.0)
    robot.call(Trigger, 'leo/stop', Trigger.Request())
    time.sleep(0.8)
    twists = [bool(t.twist.linear.x or t.twist.linear.z)
              for t in robot.messages('leo/ee_twist', since)]
    began = twists.index(True)              # (the release's stream may end after `since`)
    halted = twists.index(False, began)
    assert halted - began < 10 and len(twists) == halted + 1, twists

    since = time.monotonic()
    reply = robot.instruct.call('pick up the mug', timeout=20.0, spin=False)
    assert reply.success and reply.kind == 'pick_place', reply
    assert wait_until(lambda: robot.messages('leo/place_pose', since), timeout=5.0)
    pregrasp, = robot.messages('leo/pregrasp_pose', since)
    grasp, = robot.messages('leo/grasp_pose', since)
    place, = robot.messages('leo/place_pose', since)
    assert {p.header.frame_id for p in (pregrasp, grasp, place)} == {'map'}
    assert pregrasp.pose.position.z == pytest.approx(grasp.pose.position.z + 0.1)
    assert grasp.pose.position.x == pytest.approx(1.0, abs=0.1)
    assert place.pose.position.y == pytest.approx(grasp.pose.position.y + 0.1)
    assert [c.kind for c in robot.messages('leo/manipulator_command', since)] == \
        [ManipulatorCommand.KIND_PICK_PLACE]
    assert policy.poll() is None


def test_each_standard_output_can_be_switched_off(spawn, robot):
    start_stand_in(spawn, 'gripper')
    start_policy(spawn, 'publish_ee_twist:=false', 'publish_grasp_poses:=false',
                 'use_gripper_action:=false')
    robot.place_base(0.8, 0.5)
    robot.publish_scene()
    robot.activate()
    robot.ready()
    since = time.monotonic()
    assert robot.instruct.call('grab it', timeout=20.0, spin=False).success
    assert robot.instruct.call('pick up the mug', timeout=20.0, spin=False).success
    assert wait_until(lambda: len(robot.messages('leo/manipulator_command', since)) == 2,
                      timeout=5.0)
    time.sleep(0.8)
    assert robot.node.count_publishers('leo/ee_twist') == 0
    assert robot.node.count_publishers('leo/grasp_pose') == 0
    assert robot.messages('leo/ee_twist', since) == []
    assert robot.messages('leo/grasp_pose', since) == []
    assert not [e for e in robot.events(since) if e.startswith('gripper')]
